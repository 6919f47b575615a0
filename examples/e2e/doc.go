// Package e2e drives the example programs' browser client in headless
// Chromium. It is a separate module so that the library's module does not
// depend on chromedp. Run it with
//
//	cd examples/e2e && go test ./...
//
// Tests are skipped when Chromium is missing, unless CI=true. Set CHROMIUM
// to use another browser binary, and UPDATE_SCREENSHOTS=1 to rewrite
// docs/static.png, docs/multiport.png and docs/dark.png.
package e2e
