module github.com/daskr/daskr/bench/go

go 1.22

require github.com/daskr/daskr/bindings/go v0.0.0

replace github.com/daskr/daskr/bindings/go => ../../bindings/go
