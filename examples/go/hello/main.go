// hello lists the VMs of an embedded libxcp engine through the Go binding:
//
//	cd examples/go/hello && go run . STATE_DIR
//
// STATE_DIR is the engine's state directory (made at first use, with the
// default templates); without it, the default one.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"

	"libxcp.org/xcp"
)

func main() {
	ctx := context.Background()
	dir := ""
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	s, err := xcp.OpenLocal(ctx, xcp.LocalOptions{StateDir: dir, Originator: "hello-go"})
	if err != nil {
		fail(err)
	}
	defer s.Close()
	vms, err := s.VM.GetAllRecords(ctx)
	if err != nil {
		fail(err)
	}
	type row struct{ name, uuid, state string }
	var rows []row
	for _, r := range vms {
		if r.IsATemplate || r.IsControlDomain || r.IsASnapshot {
			continue
		}
		rows = append(rows, row{r.NameLabel, r.UUID, string(r.PowerState)})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	fmt.Printf("%d VMs in %s\n", len(rows), s.StateDir())
	for _, r := range rows {
		fmt.Printf("%-36s  %-9s  %s\n", r.uuid, r.state, r.name)
	}
}

func fail(err error) {
	var xe *xcp.Error
	if errors.As(err, &xe) {
		fmt.Fprintf(os.Stderr, "error: %s %v\n", xe.Name, xe.Params)
	} else {
		fmt.Fprintln(os.Stderr, "error:", err)
	}
	os.Exit(1)
}
