package rest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// encoding/json is lenient in two ways that matter to a ledger API: it
// matches object keys to struct fields ignoring case ("AMOUNT" fills
// Amount), and it keeps the last of duplicate keys ({"amount":"1.00",
// "amount":"1000.00"} debits 1000.00). A proxy, a logger or a client
// library that reads the same body may pick the other value. checkKeys
// walks the body's tokens once, before it is decoded, and refuses both.

// MaxJSONDepth bounds the nesting of a request body. No request type is
// deeper than 2; the bound keeps the key walk's recursion small whatever a
// client sends (encoding/json's own limit is 10,000).
const MaxJSONDepth = 64

// keyWalk reads a body's tokens to find a duplicate key (the document is
// not acceptable JSON: invalid_json) or a key that names no field of the
// request exactly (invalid_request).
type keyWalk struct {
	dec *json.Decoder
	// unknown is the first key that matched no field; the walk goes on,
	// so that a duplicate key or a syntax error later in the body (errors
	// of the document itself) are reported first.
	unknown error
}

// checkKeys refuses duplicate keys at any depth and keys that are not
// exactly a json field name of the request type t (a struct, possibly
// nested). It returns nil on a syntax error: the decoder that runs next
// reports that with its position.
func checkKeys(body []byte, t reflect.Type) error {
	w := &keyWalk{dec: json.NewDecoder(bytes.NewReader(body))}
	w.dec.UseNumber()
	if err := w.value(t, "", 0); err != nil {
		if err == errSyntax { //nolint:errorlint // the walk's own sentinel, never wrapped
			return nil
		}
		return err
	}
	return w.unknown
}

// errSyntax stops the walk at a token the decoder cannot read.
var errSyntax = errInvalidJSON("the request body is not valid JSON")

func (w *keyWalk) value(t reflect.Type, at string, depth int) error {
	tok, err := w.dec.Token()
	if err != nil {
		return errSyntax
	}
	switch tok {
	case json.Delim('{'):
		return w.object(t, at, depth+1)
	case json.Delim('['):
		return w.array(t, at, depth+1)
	}
	return nil
}

func (w *keyWalk) object(t reflect.Type, at string, depth int) error {
	if depth > MaxJSONDepth {
		return errInvalidJSON("the request body is nested deeper than %d levels", MaxJSONDepth)
	}
	fields := fieldsOf(t)
	seen := map[string]bool{}
	for w.dec.More() {
		tok, err := w.dec.Token()
		if err != nil {
			return errSyntax
		}
		key, _ := tok.(string)
		if seen[key] {
			return errInvalidJSON("duplicate key %s%s: send each member once", quoteKey(key), where(at))
		}
		seen[key] = true
		var child reflect.Type
		if fields != nil {
			f, ok := fields.byName[key]
			if !ok && w.unknown == nil {
				w.unknown = unknownField(key, at, fields)
			}
			child = f
		}
		if err := w.value(child, at+"/"+key, depth); err != nil {
			return err
		}
	}
	if _, err := w.dec.Token(); err != nil { // the closing brace
		return errSyntax
	}
	return nil
}

func (w *keyWalk) array(t reflect.Type, at string, depth int) error {
	if depth > MaxJSONDepth {
		return errInvalidJSON("the request body is nested deeper than %d levels", MaxJSONDepth)
	}
	var elem reflect.Type
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	for i := 0; w.dec.More(); i++ {
		if err := w.value(elem, at+"/"+strconv.Itoa(i), depth); err != nil {
			return err
		}
	}
	if _, err := w.dec.Token(); err != nil { // the closing bracket
		return errSyntax
	}
	return nil
}

// unknownField names the key sent and, when it differs from a field only
// in case, the field meant.
func unknownField(key, at string, fields *structFields) error {
	for _, name := range fields.names {
		if strings.EqualFold(name, key) {
			return errInvalidRequest("unknown field %s%s: field names are case-sensitive; did you mean %q?",
				quoteKey(key), where(at), name)
		}
	}
	return errInvalidRequest("unknown field %s%s", quoteKey(key), where(at))
}

func quoteKey(key string) string { return strconv.Quote(truncate(key, 100)) }

// where names the object a key is in as a JSON Pointer (RFC 6901, without
// its escapes), or nothing at the top level.
func where(at string) string {
	if at == "" {
		return ""
	}
	return " in " + strconv.Quote(truncate(at, 200))
}

// structFields are the exact json names of a struct's fields.
type structFields struct {
	byName map[string]reflect.Type
	names  []string
}

var (
	fieldsCache   sync.Map // reflect.Type → *structFields (nil for types not checked)
	unmarshalerTy = reflect.TypeFor[json.Unmarshaler]()
)

// fieldsOf returns the field names of t when t is a struct decoded field
// by field; nil for anything else (scalars, maps, interfaces and types with
// their own UnmarshalJSON), whose keys are then not checked by name.
func fieldsOf(t reflect.Type) *structFields {
	if t == nil {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(unmarshalerTy) {
		return nil
	}
	if f, ok := fieldsCache.Load(t); ok {
		return f.(*structFields)
	}
	f := &structFields{byName: map[string]reflect.Type{}}
	collectFields(t, f)
	fieldsCache.Store(t, f)
	return f
}

// collectFields follows encoding/json's naming: the tag's name, else the
// Go name; "-" and unexported fields are skipped; an untagged embedded
// struct's fields are promoted.
func collectFields(t reflect.Type, into *structFields) {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := sf.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if sf.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			collectFields(ft, into)
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if _, dup := into.byName[name]; !dup {
			into.names = append(into.names, name)
		}
		into.byName[name] = sf.Type
	}
}
