package api

import (
	"embed"
	"io/fs"
	"net/http"
)

// The dashboard is static files: the page asks for the token, keeps it in
// the tab's sessionStorage and sends it as the bearer token of its /v1
// requests, so the files hold no data and need no token, and no cookie
// rides along that another site could make a browser send. uPlot
// (web/uPlot.*, MIT, web/uPlot.LICENSE) is vendored from its npm package
// so building greypit needs no node.
//
//go:embed web
var web embed.FS

// csp allows the page's own files only: no inline script, nothing from
// elsewhere, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func dashboard(mux *http.ServeMux) {
	files, err := fs.Sub(web, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux.Handle("GET /{$}", static(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, files, "index.html")
	})))
	mux.Handle("GET /assets/", static(http.StripPrefix("/assets/", http.FileServerFS(files))))
}

func static(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-cache") // an upgraded daemon's page is seen at once
		h.ServeHTTP(w, r)
	})
}
