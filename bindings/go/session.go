// Package xcp is the Go binding of libxcp, the Xen toolstack library that
// speaks XAPI's object model: the same classes, messages and errors as
// XenAPI, on an engine embedded in this process (a state directory, no
// daemon) or on a XenAPI server (libxcp's xcpd, or a XAPI host).
//
//	s, err := xcp.Open(ctx, "local:/var/lib/xcp", "", "")
//	defer s.Close()
//	vms, err := s.VM.GetAllRecords(ctx)
//	err = s.VM.Start(ctx, vm, false, false)
//	var xe *xcp.Error
//	if errors.As(err, &xe) && xe.Name == "VM_BAD_POWER_STATE" { ... }
//
// Every XenAPI message is a method of its class's accessor on the session
// (s.VM, s.SR, s.Task ...), generated from libxcp's model
// (tools/gen_go.py), with typed references (VMRef), records (VMRecord) and
// enums (VMPowerState). Messages callable as tasks also have an Async
// variant whose Pending result is waited for with Wait.
//
// Every call takes a context.Context: cancelling it stops the wait for real
// (xcp_session_interrupt): a long poll (event.from, a task's Wait) or a
// remote call waiting for its reply returns ctx.Err() at once. The binding
// calls libxcp through cgo: xcp_call() with generic values, converted from
// and to the typed Go values here.
//
// A Session may be used from several goroutines; its calls are serialised
// (libxcp sessions serve one call at a time), so a goroutine that waits in
// a long poll (Watch, Wait) holds the session meanwhile: give it a session
// of its own.
package xcp

/*
#include <stdlib.h>
#include <string.h>
#include <xcp/xcp.h>

// The thread's last error as one block, "name\0param\0param\0", read in
// the same C call as the failure (a goroutine may move to another thread
// between two calls). NULL when there is none; free() it.
static char *goxcp_error(size_t *len, size_t *nparams, int rc)
{
	const xcp_error *e = xcp_error_last();
	const char *name = e && e->name ? e->name : "INTERNAL_ERROR";
	size_t n = strlen(name) + 1, i, np = e ? e->nparams : 0;
	char *buf, *p;

	for (i = 0; i < np; i++)
		n += strlen(e->params[i]) + 1;
	if (!(buf = malloc(n)))
		return NULL;
	p = buf;
	memcpy(p, name, strlen(name) + 1);
	p += strlen(name) + 1;
	for (i = 0; i < np; i++) {
		memcpy(p, e->params[i], strlen(e->params[i]) + 1);
		p += strlen(e->params[i]) + 1;
	}
	*len = n;
	*nparams = np;
	(void)rc;
	return buf;
}

typedef struct goxcp_err {
	char *block;
	size_t len, nparams;
} goxcp_err;

static int goxcp_fail(int rc, goxcp_err *e)
{
	if (rc < 0)
		e->block = goxcp_error(&e->len, &e->nparams, rc);
	return rc;
}

static int goxcp_call(xcp_session *s, xcp_value *res, const char *m,
		      size_t n, const xcp_value *a, goxcp_err *e)
{
	return goxcp_fail(xcp_call(s, res, m, n, a), e);
}

static int goxcp_task_wait(xcp_session *s, xcp_value *res, const char *task,
			   goxcp_err *e)
{
	return goxcp_fail(xcp_task_wait(s, res, task), e);
}

static int goxcp_open_local(xcp_session **s, const char *dir, const char *hv,
			    const char *orig, unsigned lock_ms, goxcp_err *e)
{
	xcp_open_options o;

	memset(&o, 0, sizeof(o));
	o.version = XCP_OPEN_OPTIONS_VERSION;
	o.state_dir = dir;
	o.hv = hv;
	o.originator = orig;
	o.lock_timeout_ms = lock_ms;
	return goxcp_fail(xcp_session_open_local(s, &o), e);
}

static int goxcp_open_remote(xcp_session **s, const char *uri,
			     const char *user, const char *pw,
			     const char *orig, int json, const char *ca,
			     int insecure, unsigned connect_ms, unsigned ms,
			     goxcp_err *e)
{
	xcp_remote_options o;

	memset(&o, 0, sizeof(o));
	o.version = XCP_REMOTE_OPTIONS_VERSION;
	o.uri = uri;
	o.user = user;
	o.password = pw;
	o.originator = orig;
	o.protocol = json ? XCP_REMOTE_JSONRPC : XCP_REMOTE_XMLRPC;
	o.ca_file = ca;
	o.insecure = insecure != 0;
	o.connect_timeout_ms = connect_ms;
	o.timeout_ms = ms;
	return goxcp_fail(xcp_session_open_remote(s, &o), e);
}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Session is an open libxcp session: embedded (OpenLocal) or remote
// (OpenRemote). Its fields VM, SR, Task ... call the messages of each class.
type Session struct {
	classes
	mu    sync.Mutex
	p     *C.xcp_session
	ref   string
	local bool
}

// LocalOptions open a session on an engine embedded in this process.
type LocalOptions struct {
	// StateDir is the engine's state directory; "": $XCP_STATE_DIR, else
	// /var/lib/xcp for root, else $XDG_DATA_HOME/xcp or ~/.local/share/xcp.
	StateDir string
	// HV is the hypervisor driver ("sim", "xen"); "": $XCP_HV, else xen
	// when usable, else sim.
	HV string
	// Originator tags the session ("": "libxcp").
	Originator string
	// LockTimeout bounds the wait for another process holding the state
	// directory; 0: forever.
	LockTimeout time.Duration
}

// RemoteOptions open a session on a XenAPI server.
type RemoteOptions struct {
	// URI is "https://host[:port]", "http://host[:port]" or
	// "unix:/path/to/socket".
	URI string
	// User ("": root) and Password log in.
	User, Password string
	// Originator tags the session at login ("": "libxcp").
	Originator string
	// JSONRPC speaks JSON-RPC (POST /jsonrpc) instead of XML-RPC.
	JSONRPC bool
	// CAFile verifies the server with these CAs instead of the system's.
	CAFile string
	// Insecure skips the server certificate's verification (XAPI hosts
	// use self-signed certificates; xe does this).
	Insecure bool
	// ConnectTimeout bounds each connection's establishment (0: 30 s).
	ConnectTimeout time.Duration
	// Timeout bounds the wait for any one reply (0: none; cancel the
	// call's context instead).
	Timeout time.Duration
}

// ErrClosed is returned by calls on a closed Session.
var ErrClosed = errors.New("xcp: session is closed")

var checkOnce sync.Once
var checkErr error

// checkModel compares the model this binding was generated from with the
// tables of the libxcp loaded: the records are read by field index.
func checkModel() error {
	checkOnce.Do(func() {
		if int(C.xcp_class_count()) != len(modelClasses) {
			checkErr = fmt.Errorf("xcp: libxcp %s has %d classes, this binding %d: rebuild the binding (make regen)",
				C.GoString(C.xcp_version()), int(C.xcp_class_count()), len(modelClasses))
			return
		}
		for i, name := range modelClasses {
			got := C.GoString(C.xcp_class_name(C.int(i)))
			n := int(C.xcp_class_field_count(C.int(i)))
			if got != name || n != modelFieldCounts[i] {
				checkErr = fmt.Errorf("xcp: libxcp's class %d is %s with %d fields, this binding's %s with %d: rebuild the binding (make regen)",
					i, got, n, name, modelFieldCounts[i])
				return
			}
		}
	})
	return checkErr
}

// cstr is a C copy of s, or NULL for "" when empty means "default".
func cstrOrNil(s string) *C.char {
	if s == "" {
		return nil
	}
	return C.CString(s)
}

func freeC(ps ...*C.char) {
	for _, p := range ps {
		if p != nil {
			C.free(unsafe.Pointer(p))
		}
	}
}

func newSession(p *C.xcp_session, local bool) *Session {
	s := &Session{p: p, local: local, ref: C.GoString(C.xcp_session_ref(p))}
	s.classes.init(s)
	return s
}

// opened runs open, which returns a session or an error, honouring ctx:
// when ctx ends first, ctx.Err() is returned at once and the session the
// open makes later is closed.
func opened(ctx context.Context, open func() (*Session, error)) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if ctx.Done() == nil {
		return open()
	}
	type result struct {
		s   *Session
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := open()
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.s != nil {
				r.s.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// OpenLocal opens a session on an engine embedded in this process, logged
// in as the local superuser. The engine owns the state directory while a
// local session is open (other processes wait for it).
func OpenLocal(ctx context.Context, o LocalOptions) (*Session, error) {
	if err := checkModel(); err != nil {
		return nil, err
	}
	return opened(ctx, func() (*Session, error) {
		dir, hv, orig := cstrOrNil(o.StateDir), cstrOrNil(o.HV), cstrOrNil(o.Originator)
		defer freeC(dir, hv, orig)
		var p *C.xcp_session
		var e C.goxcp_err
		rc := C.goxcp_open_local(&p, dir, hv, orig, C.uint(o.LockTimeout/time.Millisecond), &e)
		if rc < 0 {
			return nil, takeError(rc, &e)
		}
		return newSession(p, true), nil
	})
}

// OpenRemote opens a session on a XenAPI server and logs in with
// session.login_with_password. Transport failures are *Error values too:
// CONNECTION_FAILED, SSL_VERIFY_ERROR, TLS_CONNECTION_FAILED,
// TRANSPORT_ERROR (Code CodeIO).
func OpenRemote(ctx context.Context, o RemoteOptions) (*Session, error) {
	if err := checkModel(); err != nil {
		return nil, err
	}
	return opened(ctx, func() (*Session, error) {
		uri, user, pw := C.CString(o.URI), cstrOrNil(o.User), cstrOrNil(o.Password)
		orig, ca := cstrOrNil(o.Originator), cstrOrNil(o.CAFile)
		defer freeC(uri, user, pw, orig, ca)
		json, insecure := 0, 0
		if o.JSONRPC {
			json = 1
		}
		if o.Insecure {
			insecure = 1
		}
		var p *C.xcp_session
		var e C.goxcp_err
		rc := C.goxcp_open_remote(&p, uri, user, pw, orig, C.int(json), ca, C.int(insecure),
			C.uint(o.ConnectTimeout/time.Millisecond), C.uint(o.Timeout/time.Millisecond), &e)
		if rc < 0 {
			return nil, takeError(rc, &e)
		}
		return newSession(p, false), nil
	})
}

// Open opens a session by URI, as XenAPI.py's Session: "local:/state/dir"
// (or "local:" for the default state directory) embeds the engine;
// "https://host", "http://host[:port]" and "unix:/path" log in to a server
// with user and password.
func Open(ctx context.Context, uri, user, password string) (*Session, error) {
	if uri == "" || strings.HasPrefix(uri, "local:") {
		return OpenLocal(ctx, LocalOptions{StateDir: strings.TrimPrefix(uri, "local:")})
	}
	return OpenRemote(ctx, RemoteOptions{URI: uri, User: user, Password: password})
}

// Close logs out (remote) or releases the engine (local). Later calls
// fail with ErrClosed; closing twice is harmless.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p != nil {
		C.xcp_session_close(s.p)
		s.p = nil
	}
	return nil
}

// Ref is the session's XenAPI reference ("OpaqueRef:...").
func (s *Session) Ref() SessionRef { return SessionRef(s.ref) }

// IsLocal tells whether the engine is embedded in this process.
func (s *Session) IsLocal() bool { return s.local }

// StateDir is the state directory of a local session ("" when remote).
func (s *Session) StateDir() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p == nil {
		return ""
	}
	if d := C.xcp_session_state_dir(s.p); d != nil {
		return C.GoString(d)
	}
	return ""
}

// Ref is an untyped reference, for classes libxcp does not model.
type Ref string

// NullRef is XenAPI's null reference.
const NullRef = "OpaqueRef:NULL"

// IsNull tells whether r is the null reference (or empty).
func (r Ref) IsNull() bool { return r == "" || r == NullRef }

// cmethods caches the C copies of wire names (never freed: a few hundred
// short strings at most).
var cmethods sync.Map

func cmethod(name string) *C.char {
	if p, ok := cmethods.Load(name); ok {
		return p.(*C.char)
	}
	p, _ := cmethods.LoadOrStore(name, C.CString(name))
	return p.(*C.char)
}

// interruptible runs f (a C call on s.p, s.mu held) so that ctx's end
// interrupts it: a goroutine waits for ctx.Done() and calls
// xcp_session_interrupt, which makes a waiting call return XCP_EINTR. It
// tells whether the interrupt happened; the session is resumed then.
func (s *Session) interruptible(ctx context.Context, f func()) bool {
	if ctx.Done() == nil {
		f()
		return false
	}
	p := s.p
	done := make(chan struct{})
	fired := make(chan bool, 1)
	go func() {
		select {
		case <-ctx.Done():
			C.xcp_session_interrupt(p)
			fired <- true
		case <-done:
			fired <- false
		}
	}()
	f()
	close(done)
	if <-fired {
		C.xcp_session_resume(p)
		return true
	}
	return false
}

// invoke calls method with args and decodes its result with dec (nil:
// none wanted).
func (s *Session) invoke(ctx context.Context, method string, args *argList, dec func(*decoder, *cval)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if args.a.err != nil {
		return args.a.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p == nil {
		return ErrClosed
	}
	var rc C.int
	var e C.goxcp_err
	res := args.result()
	cm := cmethod(method)
	interrupted := s.interruptible(ctx, func() {
		rc = C.goxcp_call(s.p, res, cm, C.size_t(args.n), args.vals, &e)
	})
	defer C.xcp_value_dispose(res)
	if rc < 0 {
		err := takeError(rc, &e)
		if interrupted {
			return ctx.Err()
		}
		return err
	}
	if dec != nil {
		d := decoder{}
		dec(&d, res)
		return d.err
	}
	return nil
}

// call is what the generated methods use.
func (s *Session) call(ctx context.Context, method string, args *argList, dec func(*decoder, *cval)) error {
	return s.invoke(ctx, method, args, dec)
}

// callAsync calls Async.<method>: the task's reference.
func (s *Session) callAsync(ctx context.Context, method string, args *argList) (TaskRef, error) {
	var t TaskRef
	err := s.invoke(ctx, "Async."+method, args, func(d *decoder, v *cval) {
		t = TaskRef(decString(d, v))
	})
	return t, err
}

// Call calls any XenAPI message by its wire name ("VM.start",
// "Async.VM.clone") with generic arguments (see encAny: strings, ints,
// floats, bools, time.Time, slices, string-keyed maps, records), the
// session excluded; the result is generic too (records typed).
func (s *Session) Call(ctx context.Context, method string, args ...any) (any, error) {
	a := s.newArgs(len(args))
	defer a.free()
	for i, x := range args {
		encAny(a.a, a.at(i), x)
	}
	var out any
	err := s.invoke(ctx, method, a, func(d *decoder, v *cval) { out = decAny(d, v) })
	return out, err
}

// Pending is a call running as a task (the Async variant of a message).
type Pending[T any] struct {
	s *Session
	// Task is the task doing the call: cancel it with s.Task.Cancel.
	Task TaskRef
	dec  func(*decoder, *cval) T
}

// Wait waits until the task completes and returns its result, or its
// error as an *Error. The task is destroyed then. When ctx ends first,
// Wait returns ctx.Err() at once and the task goes on (it is the caller's:
// cancel it or wait again).
func (p *Pending[T]) Wait(ctx context.Context) (T, error) {
	var out T
	if err := ctx.Err(); err != nil {
		return out, err
	}
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p == nil {
		return out, ErrClosed
	}
	a := getArena()
	defer putArena(a)
	res := (*cval)(a.alloc(valSize))
	task := a.cstr(string(p.Task))
	var rc C.int
	var e C.goxcp_err
	interrupted := s.interruptible(ctx, func() {
		rc = C.goxcp_task_wait(s.p, res, task, &e)
	})
	defer C.xcp_value_dispose(res)
	if rc < 0 {
		err := takeError(rc, &e)
		if interrupted {
			return out, ctx.Err()
		}
		return out, err
	}
	d := decoder{}
	if res.kind != C.XCP_VAL_NONE {
		out = p.dec(&d, res)
	}
	return out, d.err
}

func decNothing(d *decoder, v *cval) struct{} { return struct{}{} }

// takeError turns the error block a C helper copied (goxcp_err) into an
// *Error and frees the block.
func takeError(rc C.int, e *C.goxcp_err) *Error {
	if e.block == nil {
		return &Error{Code: int(rc), Name: "INTERNAL_ERROR", Params: []string{"out of memory"}}
	}
	defer C.free(unsafe.Pointer(e.block))
	parts := strings.Split(C.GoStringN(e.block, C.int(e.len)), "\x00")
	// the block ends with a NUL: one more (empty) part than it holds
	return &Error{Code: int(rc), Name: parts[0], Params: append([]string{}, parts[1:1+int(e.nparams)]...)}
}

// WaitTask waits for any task (one made by task.create, or an Async call
// made with Call) as Pending.Wait does; its result is generic (decAny).
func (s *Session) WaitTask(ctx context.Context, task TaskRef) (any, error) {
	p := &Pending[any]{s: s, Task: task, dec: decAny}
	return p.Wait(ctx)
}
