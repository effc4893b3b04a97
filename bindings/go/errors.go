package xcp

// #include <stdlib.h>
// #include <xcp/xcp.h>
import "C"

import (
	"strings"
	"unsafe"
)

// libxcp's return codes (Error.Code). The XenAPI name is the real
// information; the code tells where the error came from.
const (
	CodeAPI         = -1 // a XenAPI error (the engine's or the server's)
	CodeNoMemory    = -2 // out of memory
	CodeInvalid     = -3 // invalid argument
	CodeIO          = -4 // transport failure (remote sessions)
	CodeInternal    = -5 // a bug
	CodeInterrupted = -6 // xcp_session_interrupt (a cancelled context)
)

// Error is a XenAPI error: its name ("VM_BAD_POWER_STATE") and parameters,
// exactly as a XenAPI server sends them. Use errors.As to get at it.
type Error struct {
	// Code is libxcp's return code (CodeAPI, CodeIO ...).
	Code int
	// Name is the XenAPI error code, e.g. "HANDLE_INVALID".
	Name string
	// Params are the error's parameters.
	Params []string
}

// Error renders the error as XenAPI.py's Failure does: name and params.
func (e *Error) Error() string {
	if len(e.Params) == 0 {
		return e.Name
	}
	return e.Name + ": [" + strings.Join(e.Params, ", ") + "]"
}

// Description is the human text of the error's name (what xe prints on
// its first line), or "" when libxcp does not know the name.
func (e *Error) Description() string {
	n := C.CString(e.Name)
	defer C.free(unsafe.Pointer(n))
	if d := C.xcp_error_description(n); d != nil {
		return C.GoString(d)
	}
	return ""
}

// ParamNames are the names of the error's parameters (as xe prints
// them), or nil when libxcp does not know the name.
func (e *Error) ParamNames() []string {
	n := C.CString(e.Name)
	defer C.free(unsafe.Pointer(n))
	var k C.size_t
	p := C.xcp_error_param_names(&k, n)
	if p == nil {
		return nil
	}
	out := make([]string, int(k))
	for i, s := range unsafe.Slice(p, int(k)) {
		out[i] = C.GoString(s)
	}
	return out
}
