module github.com/daskr/daskr/bindings/go

go 1.22
