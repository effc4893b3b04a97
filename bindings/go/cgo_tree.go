//go:build !xcp_pkgconfig

package xcp

// Built against the source tree this package sits in (after
// `sh tools/build.sh`): the public headers of include/ and the libxcp.so
// libtool leaves in lib/libxcp/.libs, found again at run time through the
// rpath. Build with -tags xcp_pkgconfig to use an installed libxcp
// (pkg-config libxcp) instead.

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #cgo LDFLAGS: -L${SRCDIR}/../../lib/libxcp/.libs -lxcp -Wl,-rpath,${SRCDIR}/../../lib/libxcp/.libs
import "C"
