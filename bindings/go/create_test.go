package xcp

import (
	"context"
	"testing"
)

// A constructor from Go: what the record leaves empty takes the model's
// defaults (strings, sets, maps unset; enums their default or first
// value), what it sets is kept; the VM starts.
func TestCreateDefaults(t *testing.T) {
	s := openLocal(t)
	ctx := context.Background()
	const mem = 64 << 20
	vm, err := s.VM.Create(ctx, VMRecord{NameLabel: "go-created",
		MemoryStaticMin: mem, MemoryDynamicMin: mem, MemoryStaticMax: mem,
		MemoryDynamicMax: mem, VCPUsMax: 1, VCPUsAtStartup: 1,
		DomainType: DomainTypeHVM, OtherConfig: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	r, err := s.VM.GetRecord(ctx, vm)
	if err != nil {
		t.Fatal(err)
	}
	if r.NameLabel != "go-created" || r.OtherConfig["k"] != "v" || r.VCPUsMax != 1 ||
		r.ActionsAfterShutdown != OnNormalExitDestroy || r.DomainType != DomainTypeHVM {
		t.Fatalf("created record: %q %v %d %q %q", r.NameLabel, r.OtherConfig, r.VCPUsMax,
			r.ActionsAfterShutdown, r.DomainType)
	}
	if err := s.VM.Start(ctx, vm, false, false); err != nil {
		t.Fatalf("start: %v", err)
	}
	// a required field missing in the record is XAPI's error
	_, err = s.VM.Create(ctx, VMRecord{NameLabel: "no-memory"})
	if err == nil {
		t.Fatal("a VM without memory was created")
	}
}
