module github.com/hubchat/chat/examples/e2e

go 1.26.0

replace (
	github.com/hubchat/chat => ../..
	github.com/hubchat/chat/examples => ../
)

require (
	github.com/chromedp/cdproto v0.159.0
	github.com/chromedp/chromedp v0.23.0
	github.com/google/go-cmp v0.7.0
	github.com/hubchat/chat/examples v0.0.0-00010101000000-000000000000
)

require (
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	github.com/gorilla/websocket v1.5.3 // indirect
)
