module github.com/hubchat/chat/examples/jwt

go 1.26.0

// The chat library and the examples' shared helpers (examples/internal), from
// this checkout.
replace (
	github.com/hubchat/chat => ../..
	github.com/hubchat/chat/examples => ..
)

require (
	github.com/golang-jwt/jwt/v5 v5.3.1
	github.com/gorilla/websocket v1.5.3
	github.com/hubchat/chat v0.0.0-00010101000000-000000000000
	github.com/hubchat/chat/examples v0.0.0-00010101000000-000000000000
)
