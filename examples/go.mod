module github.com/hubchat/chat/examples

go 1.26.0

replace github.com/hubchat/chat => ../

require (
	github.com/google/go-cmp v0.7.0
	github.com/gorilla/websocket v1.5.3
	github.com/hubchat/chat v0.0.0-00010101000000-000000000000
)
