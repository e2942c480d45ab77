// A Go program built against an installed daskr (make test-install points PKG_CONFIG_PATH at
// <prefix>/lib/pkgconfig for the package's `#cgo pkg-config: daskr`); the package comes from this checkout.
module daskr-install-consumer

go 1.22

require github.com/daskr/daskr/bindings/go v0.0.0

replace github.com/daskr/daskr/bindings/go => ../../../../bindings/go
