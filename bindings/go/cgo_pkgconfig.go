//go:build xcp_pkgconfig

package xcp

// Built against an installed libxcp: `go build -tags xcp_pkgconfig` with
// libxcp.pc on PKG_CONFIG_PATH (make install puts it in $libdir/pkgconfig).

// #cgo pkg-config: libxcp
import "C"
