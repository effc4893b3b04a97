package xcp

// The binding against the built libxcp on the sim hypervisor: embedded
// sessions on a fresh state directory, and remote ones against the built
// xcpd (XCPD, set by bindings/go/test.sh) over its unix socket, HTTP
// XML-RPC and JSON-RPC. make check provides XCP_HV=sim and the templates.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const tmplName = "Debian Bookworm 12"

func openLocal(t *testing.T) *Session {
	t.Helper()
	if os.Getenv("XCP_HV") == "" {
		os.Setenv("XCP_HV", "sim")
	}
	s, err := OpenLocal(context.Background(), LocalOptions{StateDir: t.TempDir(), Originator: "go-test"})
	if err != nil {
		t.Fatalf("OpenLocal: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// xcpd runs the built daemon on a fresh state directory: its unix socket
// and its HTTP address.
func xcpd(t *testing.T) (sock, httpURL string) {
	t.Helper()
	bin := os.Getenv("XCPD")
	if bin == "" {
		bin = "../../cmd/xcpd/xcpd"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no xcpd at %s (set XCPD): %v", bin, err)
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	os.MkdirAll(state, 0o755)
	auth := filepath.Join(dir, "auth")
	// SHA-512 crypt of "secret" (as tests/xcpd/test_xcpd.py)
	hash := "$6$fuzzsalt$iDTMfLlIWXnU0u/ucN8Rvel1jyy/OslJpB.sv1b7aqQg/" +
		"Na4Y9B47sFqgSiQ4wv/4SbFVVCnHAGIJVpklv8Rc."
	os.WriteFile(auth, []byte("root:"+hash+"\n"), 0o600)
	logf, _ := os.Create(filepath.Join(dir, "log"))
	cmd := exec.Command(bin, "--state-dir", state, "--auth-file", auth,
		"--auth-fail-delay", "100", "--listen", "127.0.0.1:0")
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("xcpd: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	re := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "log"))
		if strings.Contains(string(b), "xcpd: ready") {
			m := re.FindStringSubmatch(string(b))
			if m == nil {
				t.Fatalf("no HTTP listener in:\n%s", b)
			}
			return filepath.Join(state, "xapi"), m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("xcpd did not start:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func template(t *testing.T, s *Session) VMRef {
	t.Helper()
	ctx := context.Background()
	ts, err := s.VM.GetByNameLabel(ctx, tmplName)
	if err != nil || len(ts) != 1 {
		t.Fatalf("template %q: %v %v", tmplName, ts, err)
	}
	return ts[0]
}

func install(t *testing.T, s *Session, name string) VMRef {
	t.Helper()
	ctx := context.Background()
	vm, err := s.VM.Clone(ctx, template(t, s), name)
	if err != nil {
		t.Fatalf("clone: %v", err)
	}
	if err := s.VM.Provision(ctx, vm); err != nil {
		t.Fatalf("provision: %v", err)
	}
	return vm
}

// wantError asserts err is an *Error named name with params (nil: any).
func wantError(t *testing.T, err error, name string, params []string) *Error {
	t.Helper()
	var xe *Error
	if !errors.As(err, &xe) {
		t.Fatalf("want %s, got %T %v", name, err, err)
	}
	if xe.Name != name {
		t.Fatalf("want %s, got %s %v", name, xe.Name, xe.Params)
	}
	if params != nil && strings.Join(xe.Params, "|") != strings.Join(params, "|") {
		t.Fatalf("%s params: want %q, got %q", name, params, xe.Params)
	}
	return xe
}

// lifecycle is the same scenario for every kind of session.
func lifecycle(t *testing.T, s *Session) {
	ctx := context.Background()
	vm := install(t, s, "go-web1")
	rec, err := s.VM.GetRecord(ctx, vm)
	if err != nil {
		t.Fatal(err)
	}
	if rec.NameLabel != "go-web1" || rec.PowerState != VMPowerStateHalted || rec.IsATemplate {
		t.Fatalf("record: %q %q template=%v", rec.NameLabel, rec.PowerState, rec.IsATemplate)
	}
	if len(rec.VBDs) == 0 || rec.MemoryStaticMax <= 0 || rec.UUID == "" {
		t.Fatalf("record: VBDs %v memory %d uuid %q", rec.VBDs, rec.MemoryStaticMax, rec.UUID)
	}
	byUUID, err := s.VM.GetByUUID(ctx, rec.UUID)
	if err != nil || byUUID != vm {
		t.Fatalf("get_by_uuid: %v %v", byUUID, err)
	}
	// a typed set getter and a map setter
	if err := s.VM.AddToOtherConfig(ctx, vm, "go", "yes"); err != nil {
		t.Fatal(err)
	}
	oc, err := s.VM.GetOtherConfig(ctx, vm)
	if err != nil || oc["go"] != "yes" {
		t.Fatalf("other_config: %v %v", oc, err)
	}
	if err := s.VM.SetNameDescription(ctx, vm, "from Go"); err != nil {
		t.Fatal(err)
	}
	if err := s.VM.Start(ctx, vm, false, false); err != nil {
		t.Fatalf("start: %v", err)
	}
	ps, err := s.VM.GetPowerState(ctx, vm)
	if err != nil || ps != VMPowerStateRunning {
		t.Fatalf("power state %q %v", ps, err)
	}
	// XAPI's error, with its parameters, as a typed *Error
	err = s.VM.Start(ctx, vm, false, false)
	xe := wantError(t, err, "VM_BAD_POWER_STATE", []string{string(vm), "halted", "running"})
	if xe.Code != CodeAPI || xe.Description() == "" {
		t.Fatalf("code %d description %q", xe.Code, xe.Description())
	}
	metrics, err := s.VM.GetMetrics(ctx, vm)
	if err != nil || metrics.IsNull() {
		t.Fatalf("metrics %v %v", metrics, err)
	}
	mrec, err := s.VMMetrics.GetRecord(ctx, metrics)
	if err != nil || mrec.StartTime.IsZero() {
		t.Fatalf("VM_metrics start_time %v %v", mrec.StartTime, err)
	}
	if err := s.VM.HardShutdown(ctx, vm); err != nil {
		t.Fatal(err)
	}
	all, err := s.VM.GetAllRecords(ctx)
	if err != nil || all[vm].NameDescription != "from Go" {
		t.Fatalf("get_all_records: %d %v", len(all), err)
	}
	if err := s.VM.Destroy(ctx, vm); err != nil {
		t.Fatal(err)
	}
	_, err = s.VM.GetRecord(ctx, vm)
	wantError(t, err, "HANDLE_INVALID", []string{"VM", string(vm)})
	_, err = s.VM.GetByUUID(ctx, "not-a-uuid")
	wantError(t, err, "UUID_INVALID", nil)
}

// asyncCalls: an Async call's Pending result, a failed one's typed error.
func asyncCalls(t *testing.T, s *Session) {
	ctx := context.Background()
	p, err := s.VM.CloneAsync(ctx, template(t, s), "go-async")
	if err != nil {
		t.Fatal(err)
	}
	if p.Task.IsNull() {
		t.Fatal("no task")
	}
	vm, err := p.Wait(ctx)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	name, err := s.VM.GetNameLabel(ctx, vm)
	if err != nil || name != "go-async" {
		t.Fatalf("clone's name %q %v", name, err)
	}
	// the task is destroyed once waited for
	_, err = s.Task.GetStatus(ctx, p.Task)
	wantError(t, err, "HANDLE_INVALID", nil)
	ps, err := s.VM.HardShutdownAsync(ctx, vm)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ps.Wait(ctx)
	wantError(t, err, "VM_BAD_POWER_STATE", []string{string(vm), "paused, running, suspended", "halted"})
}

// cancels: a cancelled context stops a long poll and a task wait at once;
// the session works again after.
func cancels(t *testing.T, s *Session) {
	bg := context.Background()
	ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
	defer cancel()
	first, err := s.Event.From(bg, []string{"VM"}, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := first.(map[string]any)["token"].(string)
	t0 := time.Now()
	_, err = s.Event.From(ctx, []string{"VM"}, tok, 60)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("event.from: want DeadlineExceeded, got %v", err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("event.from took %v after its context ended", d)
	}
	// the session is usable again
	if _, err := s.VM.GetAll(bg); err != nil {
		t.Fatalf("after the cancel: %v", err)
	}
	task, err := s.Task.Create(bg, "go-pending", "never finishes")
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(bg)
	go func() { time.Sleep(300 * time.Millisecond); cancel2() }()
	t0 = time.Now()
	_, err = s.WaitTask(ctx2, task)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("task wait: want Canceled, got %v", err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("task wait took %v", d)
	}
	st, err := s.Task.GetStatus(bg, task)
	if err != nil || st != TaskStatusTypePending {
		t.Fatalf("the task after the cancel: %q %v", st, err)
	}
	// a context that already ended makes no call
	_, err = s.VM.GetAll(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ended context: %v", err)
	}
}

// watch: the events of one session's changes on another's stream, typed.
func watch(t *testing.T, s, w *Session) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	vm := install(t, s, "go-watched")
	first, err := w.Event.From(ctx, []string{"VM"}, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := first.(map[string]any)["token"].(string)
	st := w.Watch(ctx, []string{"VM"}, tok)
	if err := s.VM.SetNameLabel(ctx, vm, "go-renamed"); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(20 * time.Second)
	for found := false; !found; {
		select {
		case ev, ok := <-st.C:
			if !ok {
				t.Fatalf("stream closed: %v", st.Err())
			}
			rec, isVM := ev.Snapshot.(VMRecord)
			if ev.Ref == string(vm) && ev.Operation == EventOperationMod && isVM &&
				rec.NameLabel == "go-renamed" && ev.Class == "vm" {
				found = true
			}
		case <-timeout:
			t.Fatal("no mod event for the rename")
		}
	}
	cancel()
	select {
	case <-st.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end with its context")
	}
	if st.Err() != nil || st.Token() == "" {
		t.Fatalf("ended stream: err %v token %q", st.Err(), st.Token())
	}
}

func TestLocalLifecycle(t *testing.T) { lifecycle(t, openLocal(t)) }
func TestLocalAsync(t *testing.T)     { asyncCalls(t, openLocal(t)) }
func TestLocalCancel(t *testing.T)    { cancels(t, openLocal(t)) }

func TestLocalWatch(t *testing.T) {
	s := openLocal(t)
	w, err := OpenLocal(context.Background(), LocalOptions{StateDir: s.StateDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	watch(t, s, w)
}

func TestGenericCallAndClose(t *testing.T) {
	s := openLocal(t)
	ctx := context.Background()
	v, err := s.Call(ctx, "VM.get_by_name_label", tmplName)
	refs, ok := v.([]any)
	if err != nil || !ok || len(refs) != 1 {
		t.Fatalf("Call: %v %v", v, err)
	}
	r, err := s.Call(ctx, "VM.get_record", refs[0])
	if rec, ok := r.(VMRecord); err != nil || !ok || rec.NameLabel != tmplName {
		t.Fatalf("Call record: %T %v", r, err)
	}
	_, err = s.Call(ctx, "VM.no_such_message")
	wantError(t, err, "MESSAGE_METHOD_UNKNOWN", []string{"VM.no_such_message"})
	_, err = s.Call(ctx, "VM.get_record", struct{}{})
	wantError(t, err, "INVALID_VALUE", nil)
	s.Close()
	if _, err := s.VM.GetAll(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed: %v", err)
	}
	s.Close()
}

func TestRemote(t *testing.T) {
	sock, httpURL := xcpd(t)
	ctx := context.Background()
	for _, o := range []RemoteOptions{
		{URI: "unix:" + sock},
		{URI: httpURL, User: "root", Password: "secret"},
		{URI: httpURL, User: "root", Password: "secret", JSONRPC: true},
	} {
		o := o
		name := o.URI
		if o.JSONRPC {
			name += "/jsonrpc"
		}
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			s, err := OpenRemote(ctx, o)
			if err != nil {
				t.Fatalf("OpenRemote: %v", err)
			}
			defer s.Close()
			if s.IsLocal() || s.StateDir() != "" || !strings.HasPrefix(string(s.Ref()), "OpaqueRef:") {
				t.Fatalf("remote session: local=%v dir=%q ref=%q", s.IsLocal(), s.StateDir(), s.Ref())
			}
			lifecycle(t, s)
			asyncCalls(t, s)
			cancels(t, s)
			w, err := OpenRemote(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			watch(t, s, w)
		})
	}
	_, err := OpenRemote(ctx, RemoteOptions{URI: httpURL, User: "root", Password: "wrong"})
	wantError(t, err, "SESSION_AUTHENTICATION_FAILED", nil)
	_, err = OpenRemote(ctx, RemoteOptions{URI: "unix:/nonexistent/xapi"})
	xe := wantError(t, err, "CONNECTION_FAILED", nil)
	if xe.Code != CodeIO {
		t.Fatalf("transport error code %d", xe.Code)
	}
}

func TestOpenByURI(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), "local:"+dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.IsLocal() || s.StateDir() != dir {
		t.Fatalf("local: %v %q", s.IsLocal(), s.StateDir())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Open(ctx, "local:"+t.TempDir(), "", ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled open: %v", err)
	}
}
