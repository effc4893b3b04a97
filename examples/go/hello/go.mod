module libxcp.org/examples/hello

go 1.19

require libxcp.org/xcp v0.0.0

replace libxcp.org/xcp => ../../../bindings/go
