// A Go program built against an installed daskr (make test-install sets CGO_CFLAGS and
// CGO_LDFLAGS to the prefix); the package itself comes from this checkout.
module daskr-install-consumer

go 1.22

require github.com/daskr/daskr/bindings/go v0.0.0

replace github.com/daskr/daskr/bindings/go => ../../../../bindings/go
