package xcp

// Conversions between Go values and libxcp's xcp_value (include/xcp/value.h),
// what xcp_call() takes and returns. Results are read in place from the C
// memory (no cgo call per value); arguments are built in C memory from an
// arena freed after the call (xcp_call copies what it keeps).

// #include <stdlib.h>
// #include <xcp/xcp.h>
import "C"

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"time"
	"unsafe"
)

type cval = C.xcp_value

const valSize = unsafe.Sizeof(C.xcp_value{})

// The union's members, at the offsets value.h's layout gives them.
func uptr(v *cval) unsafe.Pointer { return unsafe.Pointer(&v.u[0]) }

func vstr(v *cval) **C.char { return (**C.char)(uptr(v)) }
func vi64(v *cval) *int64   { return (*int64)(uptr(v)) }
func vf64(v *cval) *float64 { return (*float64)(uptr(v)) }
func vbool(v *cval) *C.bool { return (*C.bool)(uptr(v)) }

// arrays: {size_t n; xcp_value *items}; structs: {size_t n; char **keys;
// xcp_value *vals}; records: {int cls; xcp_value *fields}.
func vn(v *cval) *C.size_t { return (*C.size_t)(uptr(v)) }
func vitems(v *cval) **cval {
	return (**cval)(unsafe.Add(uptr(v), unsafe.Sizeof(C.size_t(0))))
}
func vkeys(v *cval) ***C.char {
	return (***C.char)(unsafe.Add(uptr(v), unsafe.Sizeof(C.size_t(0))))
}
func vvals(v *cval) **cval {
	return (**cval)(unsafe.Add(uptr(v), unsafe.Sizeof(C.size_t(0))+unsafe.Sizeof(uintptr(0))))
}
func vcls(v *cval) *C.int { return (*C.int)(uptr(v)) }
func vfields(v *cval) **cval {
	return (**cval)(unsafe.Add(uptr(v), unsafe.Sizeof(uintptr(0))))
}

func items(v *cval) []cval {
	n := int(*vn(v))
	if n == 0 {
		return nil
	}
	return unsafe.Slice(*vitems(v), n)
}

func init() {
	// The layout read above is value.h's on every LP64 target; a build
	// where it is not stops here rather than misreading memory.
	var v cval
	if unsafe.Offsetof(v.u) != 8 || unsafe.Sizeof(v.u) < 24 {
		panic("xcp: unexpected xcp_value layout")
	}
}

// ---- decoding ---------------------------------------------------------------

// decoder reads result values; the first mismatch between a value and the
// type the model gives it is kept as the call's error.
type decoder struct{ err error }

var kindNames = map[C.xcp_value_kind]string{
	C.XCP_VAL_NONE: "none", C.XCP_VAL_STRING: "string", C.XCP_VAL_INT: "int",
	C.XCP_VAL_FLOAT: "float", C.XCP_VAL_BOOL: "bool", C.XCP_VAL_DATETIME: "datetime",
	C.XCP_VAL_ARRAY: "array", C.XCP_VAL_STRUCT: "struct", C.XCP_VAL_RECORD: "record",
}

func (d *decoder) mismatch(want string, v *cval) {
	if d.err == nil {
		d.err = &Error{Code: CodeInternal, Name: "INTERNAL_ERROR",
			Params: []string{fmt.Sprintf("xcp: a %s value where the model has %s", kindNames[v.kind], want)}}
	}
}

func decString(d *decoder, v *cval) string {
	switch v.kind {
	case C.XCP_VAL_STRING:
		return C.GoString(*vstr(v))
	case C.XCP_VAL_NONE:
		return ""
	}
	d.mismatch("string", v)
	return ""
}

func decInt(d *decoder, v *cval) int64 {
	switch v.kind {
	case C.XCP_VAL_INT, C.XCP_VAL_DATETIME:
		return *vi64(v)
	case C.XCP_VAL_STRING:
		if i, err := strconv.ParseInt(C.GoString(*vstr(v)), 10, 64); err == nil {
			return i
		}
	case C.XCP_VAL_NONE:
		return 0
	}
	d.mismatch("int", v)
	return 0
}

func decFloat(d *decoder, v *cval) float64 {
	switch v.kind {
	case C.XCP_VAL_FLOAT:
		return *vf64(v)
	case C.XCP_VAL_INT:
		return float64(*vi64(v))
	case C.XCP_VAL_NONE:
		return 0
	}
	d.mismatch("float", v)
	return 0
}

func decBool(d *decoder, v *cval) bool {
	switch v.kind {
	case C.XCP_VAL_BOOL:
		return bool(*vbool(v))
	case C.XCP_VAL_NONE:
		return false
	}
	d.mismatch("bool", v)
	return false
}

// Datetimes are seconds since the epoch, UTC; 0 (unset) is the zero Time.
func decTime(d *decoder, v *cval) time.Time {
	switch v.kind {
	case C.XCP_VAL_DATETIME, C.XCP_VAL_INT:
		if t := *vi64(v); t != 0 {
			return time.Unix(t, 0).UTC()
		}
		return time.Time{}
	case C.XCP_VAL_NONE:
		return time.Time{}
	}
	d.mismatch("datetime", v)
	return time.Time{}
}

func decSet[T any](d *decoder, v *cval, f func(*decoder, *cval) T) []T {
	switch v.kind {
	case C.XCP_VAL_ARRAY:
		it := items(v)
		out := make([]T, len(it))
		for i := range it {
			out[i] = f(d, &it[i])
		}
		return out
	case C.XCP_VAL_NONE:
		return nil
	}
	d.mismatch("set", v)
	return nil
}

func keyString[K ~string](d *decoder, s string) K { return K(s) }

func keyInt(d *decoder, s string) int64 {
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil && d.err == nil {
		d.err = &Error{Code: CodeInternal, Name: "INTERNAL_ERROR",
			Params: []string{"xcp: a map key that is not an int: " + s}}
	}
	return i
}

func keyFromString[K ~string](k K) string { return string(k) }
func keyFromInt(k int64) string           { return strconv.FormatInt(k, 10) }

func decMap[K comparable, V any](d *decoder, v *cval, fk func(*decoder, string) K, fv func(*decoder, *cval) V) map[K]V {
	switch v.kind {
	case C.XCP_VAL_STRUCT:
		n := int(*vn(v))
		out := make(map[K]V, n)
		if n == 0 {
			return out
		}
		keys := unsafe.Slice(*vkeys(v), n)
		vals := unsafe.Slice(*vvals(v), n)
		for i := 0; i < n; i++ {
			out[fk(d, C.GoString(keys[i]))] = fv(d, &vals[i])
		}
		return out
	case C.XCP_VAL_NONE:
		return nil
	}
	d.mismatch("map", v)
	return nil
}

// record gives the fields of a record value of class cls (model id) by
// index: in place for a RECORD, by name for a STRUCT (names: the class's
// fields in model order). nil for NONE or a mismatch.
func (d *decoder) record(v *cval, cls int, names []string) func(int) *cval {
	switch v.kind {
	case C.XCP_VAL_RECORD:
		if int(*vcls(v)) != cls || *vfields(v) == nil {
			d.mismatch("record:"+modelClasses[cls], v)
			return nil
		}
		f := unsafe.Slice(*vfields(v), len(names))
		return func(i int) *cval { return &f[i] }
	case C.XCP_VAL_STRUCT:
		n := int(*vn(v))
		byName := make(map[string]*cval, n)
		if n > 0 {
			keys := unsafe.Slice(*vkeys(v), n)
			vals := unsafe.Slice(*vvals(v), n)
			for i := 0; i < n; i++ {
				byName[C.GoString(keys[i])] = &vals[i]
			}
		}
		return func(i int) *cval { return byName[names[i]] }
	case C.XCP_VAL_NONE:
		return nil
	}
	d.mismatch("record:"+modelClasses[cls], v)
	return nil
}

// decAny reads a value whose type the model does not fix: string, int64,
// float64, bool, time.Time, []any, map[string]any, or a typed record
// (VMRecord ...); nil for none.
func decAny(d *decoder, v *cval) any {
	switch v.kind {
	case C.XCP_VAL_NONE:
		return nil
	case C.XCP_VAL_STRING:
		return decString(d, v)
	case C.XCP_VAL_INT:
		return *vi64(v)
	case C.XCP_VAL_FLOAT:
		return *vf64(v)
	case C.XCP_VAL_BOOL:
		return bool(*vbool(v))
	case C.XCP_VAL_DATETIME:
		return decTime(d, v)
	case C.XCP_VAL_ARRAY:
		return decSet(d, v, decAny)
	case C.XCP_VAL_STRUCT:
		return decStructAny(d, v)
	case C.XCP_VAL_RECORD:
		return decRecordOf(d, int(*vcls(v)), v)
	}
	d.mismatch("a value", v)
	return nil
}

func decStructAny(d *decoder, v *cval) any {
	return decMap(d, v, keyString[string], decAny)
}

// ---- encoding ---------------------------------------------------------------

// arena is C memory for one call's arguments, zeroed (XCP_VAL_NONE),
// freed (or kept for the next call) after it.
type arena struct {
	chunk unsafe.Pointer // the current chunk
	off   uintptr
	big   []unsafe.Pointer // allocations of their own
	err   error            // a value encAny cannot encode
}

const chunkSize = 16 << 10

var arenas = sync.Pool{New: func() any {
	return &arena{chunk: C.calloc(1, chunkSize)}
}}

func getArena() *arena { return arenas.Get().(*arena) }

func putArena(a *arena) {
	for _, p := range a.big {
		C.free(p)
	}
	a.big = a.big[:0]
	if a.off > 0 {
		b := unsafe.Slice((*byte)(a.chunk), a.off)
		for i := range b {
			b[i] = 0
		}
	}
	a.off = 0
	a.err = nil
	arenas.Put(a)
}

// alloc returns n zeroed bytes, 8-aligned.
func (a *arena) alloc(n uintptr) unsafe.Pointer {
	n = (n + 7) &^ 7
	if n == 0 {
		n = 8
	}
	if a.off+n > chunkSize {
		p := C.calloc(1, C.size_t(n))
		if p == nil {
			panic("xcp: out of memory")
		}
		a.big = append(a.big, p)
		return p
	}
	p := unsafe.Add(a.chunk, a.off)
	a.off += n
	return p
}

func (a *arena) vals(n int) *cval {
	return (*cval)(a.alloc(uintptr(n) * valSize))
}

func (a *arena) cstr(s string) *C.char {
	p := a.alloc(uintptr(len(s)) + 1)
	copy(unsafe.Slice((*byte)(p), len(s)), s)
	return (*C.char)(p)
}

// record makes v a RECORD of class cls (model id) with n NONE fields.
func (a *arena) record(v *cval, cls, n int) []cval {
	v.kind = C.XCP_VAL_RECORD
	*vcls(v) = C.int(cls)
	f := a.vals(n)
	*vfields(v) = f
	return unsafe.Slice(f, n)
}

// argList is a call's arguments (n values) and the slot of its result.
type argList struct {
	a    *arena
	vals *cval
	n    int
}

func (s *Session) newArgs(n int) *argList {
	a := getArena()
	return &argList{a: a, vals: a.vals(n + 1), n: n}
}

func (l *argList) at(i int) *cval {
	return (*cval)(unsafe.Add(unsafe.Pointer(l.vals), uintptr(i)*valSize))
}
func (l *argList) result() *cval { return l.at(l.n) }
func (l *argList) free()         { putArena(l.a) }

func encString(a *arena, v *cval, s string) {
	v.kind = C.XCP_VAL_STRING
	*vstr(v) = a.cstr(s)
}

func encInt(v *cval, x int64) {
	v.kind = C.XCP_VAL_INT
	*vi64(v) = x
}

func encFloat(v *cval, x float64) {
	v.kind = C.XCP_VAL_FLOAT
	*vf64(v) = x
}

func encBool(v *cval, x bool) {
	v.kind = C.XCP_VAL_BOOL
	*vbool(v) = C.bool(x)
}

func encTime(v *cval, x time.Time) {
	v.kind = C.XCP_VAL_DATETIME
	if x.IsZero() {
		*vi64(v) = 0
	} else {
		*vi64(v) = x.Unix()
	}
}

func encSet[T any](a *arena, v *cval, xs []T, f func(*arena, *cval, T)) {
	v.kind = C.XCP_VAL_ARRAY
	*vn(v) = C.size_t(len(xs))
	if len(xs) == 0 {
		return
	}
	it := a.vals(len(xs))
	*vitems(v) = it
	s := unsafe.Slice(it, len(xs))
	for i, x := range xs {
		f(a, &s[i], x)
	}
}

func encMap[K comparable, V any](a *arena, v *cval, m map[K]V, fk func(K) string, fv func(*arena, *cval, V)) {
	v.kind = C.XCP_VAL_STRUCT
	*vn(v) = C.size_t(len(m))
	if len(m) == 0 {
		return
	}
	keys := (**C.char)(a.alloc(uintptr(len(m)) * unsafe.Sizeof(uintptr(0))))
	vals := a.vals(len(m))
	*vkeys(v) = keys
	*vvals(v) = vals
	ks := unsafe.Slice(keys, len(m))
	vs := unsafe.Slice(vals, len(m))
	i := 0
	for k, x := range m {
		ks[i] = a.cstr(fk(k))
		fv(a, &vs[i], x)
		i++
	}
}

// encAny encodes a Go value whose type the model does not fix: nil,
// strings (and string types: refs, enums), integers, floats, bools,
// time.Time, slices and string-keyed maps of these, and records
// (VMRecord ...). Anything else is the call's INVALID_VALUE error.
func encAny(a *arena, v *cval, x any) {
	switch t := x.(type) {
	case nil:
		return
	case string:
		encString(a, v, t)
		return
	case time.Time:
		encTime(v, t)
		return
	case bool:
		encBool(v, t)
		return
	}
	if encRecordAny(a, v, x) {
		return
	}
	r := reflect.ValueOf(x)
	switch r.Kind() {
	case reflect.String:
		encString(a, v, r.String())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		encInt(v, r.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		encInt(v, int64(r.Uint()))
	case reflect.Float32, reflect.Float64:
		encFloat(v, r.Float())
	case reflect.Bool:
		encBool(v, r.Bool())
	case reflect.Slice, reflect.Array:
		xs := make([]any, r.Len())
		for i := range xs {
			xs[i] = r.Index(i).Interface()
		}
		encSet(a, v, xs, encAny)
	case reflect.Map:
		if r.Type().Key().Kind() != reflect.String {
			break
		}
		m := make(map[string]any, r.Len())
		keys := r.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			m[k.String()] = r.MapIndex(k).Interface()
		}
		encMap(a, v, m, keyFromString[string], encAny)
	default:
		if a.err == nil {
			a.err = &Error{Code: CodeInvalid, Name: "INVALID_VALUE",
				Params: []string{"argument", fmt.Sprintf("%T", x)}}
		}
	}
	if r.Kind() == reflect.Map && r.Type().Key().Kind() != reflect.String && a.err == nil {
		a.err = &Error{Code: CodeInvalid, Name: "INVALID_VALUE",
			Params: []string{"argument", fmt.Sprintf("%T", x)}}
	}
}
