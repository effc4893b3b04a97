package xcp

import (
	"context"
	"sync"
)

// Event is one change event.from reports: an object of Class added,
// modified or deleted, with its record after the change (Snapshot: a
// typed record such as VMRecord; nil for a deletion).
type Event struct {
	// ID is the event's id (a generation of the database).
	ID string
	// Class is the object's class as event.from names it ("vm", "sr").
	Class string
	// Operation is add, mod or del.
	Operation EventOperation
	// Ref is the object's reference.
	Ref string
	// Snapshot is the object's record after the change, typed
	// (VMRecord, SRRecord ...), or nil.
	Snapshot any
}

// EventStream delivers the events of a Watch on its channel C, which is
// closed when the watch ends: its context ended (Err is nil then) or
// event.from failed (Err says why, e.g. EVENTS_LOST).
type EventStream struct {
	// C receives the events, in the order event.from reports them.
	C <-chan Event

	mu    sync.Mutex
	err   error
	token string
	done  chan struct{}
}

// Err is why the stream ended: nil while it runs and when its context
// ended, else the error of event.from (an *Error).
func (st *EventStream) Err() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.err
}

// Token is the event.from token of the last batch delivered: a later
// Watch from it misses nothing.
func (st *EventStream) Token() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.token
}

// Done is closed when the stream has ended (after C is closed).
func (st *EventStream) Done() <-chan struct{} { return st.done }

// Watch follows the changes of classes ("VM", "task", "*" for all, or
// "VM/OpaqueRef:..." for one object) with event.from from token ("": the
// current state of every object first, as adds or mods, then the changes)
// and delivers them on the stream's channel until ctx ends. The session
// is held by the watch's long poll meanwhile: watch on a session of its
// own. Cancelling ctx interrupts the poll at once.
func (s *Session) Watch(ctx context.Context, classes []string, token string) *EventStream {
	ch := make(chan Event, 64)
	st := &EventStream{C: ch, token: token, done: make(chan struct{})}
	go func() {
		defer close(st.done)
		defer close(ch)
		tok := token
		for {
			evs, next, err := s.eventFrom(ctx, classes, tok, 60)
			if err != nil {
				if ctx.Err() == nil {
					st.mu.Lock()
					st.err = err
					st.mu.Unlock()
				}
				return
			}
			for _, ev := range evs {
				select {
				case ch <- ev:
				case <-ctx.Done():
					return
				}
			}
			tok = next
			st.mu.Lock()
			st.token = next
			st.mu.Unlock()
		}
	}()
	return st
}

// eventFrom is one event.from call: its events, typed, and its token.
func (s *Session) eventFrom(ctx context.Context, classes []string, token string, timeout float64) ([]Event, string, error) {
	args := s.newArgs(3)
	defer args.free()
	encSet(args.a, args.at(0), classes, func(a *arena, v *cval, x string) { encString(a, v, x) })
	encString(args.a, args.at(1), token)
	encFloat(args.at(2), timeout)
	var evs []Event
	var next string
	err := s.invoke(ctx, "event.from", args, func(d *decoder, v *cval) {
		m, _ := decAny(d, v).(map[string]any)
		next, _ = m["token"].(string)
		list, _ := m["events"].([]any)
		evs = make([]Event, 0, len(list))
		for _, x := range list {
			e, _ := x.(map[string]any)
			ev := Event{Snapshot: e["snapshot"]}
			ev.ID, _ = e["id"].(string)
			ev.Class, _ = e["class"].(string)
			op, _ := e["operation"].(string)
			ev.Operation = EventOperation(op)
			ev.Ref, _ = e["ref"].(string)
			evs = append(evs, ev)
		}
	})
	return evs, next, err
}
