package rest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tiyn/tiyn/ports"
)

// Paging limits.
const (
	// DefaultPageLimit is the page size when ?limit= is absent.
	DefaultPageLimit = 100
	// MaxPageLimit is the largest ?limit= accepted; it matches the store's
	// bound so a client never gets fewer items than it asked for silently.
	MaxPageLimit = ports.MaxPageSize
	// MaxCursorLen bounds ?cursor= before decoding it.
	MaxCursorLen = 512
)

// checkBody refuses, before reading anything, a POST body that is declared
// too large or that is not declared as JSON. A body must come with
// Content-Type: application/json (parameters allowed; a charset, if named,
// must be UTF-8, the only encoding RFC 8259 allows). A POST without a body
// (Content-Length: 0, as block, unblock and close are usually sent) needs no
// Content-Type: there is nothing to type. A body of unknown length (chunked)
// counts as a body.
func (a *api) checkBody(r *http.Request) error {
	if r.ContentLength > a.maxBody {
		return &http.MaxBytesError{Limit: a.maxBody}
	}
	if r.ContentLength == 0 {
		return nil
	}
	if !isJSONContentType(r.Header.Get("Content-Type")) {
		return newHTTPError(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
			"a request body needs Content-Type: application/json (UTF-8)")
	}
	return nil
}

// checkCSVBody is checkBody for POST /v1/reconciliations: the body, when
// there is one, is a CSV report (Content-Type: text/csv, UTF-8), bounded
// by Reconciliation.MaxCSVBytes. No body (Content-Length: 0) asks for the
// Data API.
func (a *api) checkCSVBody(r *http.Request) error {
	if r.ContentLength > a.recon.MaxCSVBytes {
		return &http.MaxBytesError{Limit: a.recon.MaxCSVBytes}
	}
	if r.ContentLength == 0 {
		return nil
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	cs, named := params["charset"]
	if err != nil || mt != "text/csv" || named && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return newHTTPError(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
			"a reconciliation body is a CSV report with Content-Type: text/csv (UTF-8); send no body to ask the Data API")
	}
	return nil
}

// isJSONContentType accepts application/json with no charset or a UTF-8 one.
func isJSONContentType(header string) bool {
	mt, params, err := mime.ParseMediaType(header)
	if err != nil || mt != "application/json" {
		return false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return false
	}
	return true
}

// decodeJSON reads exactly one JSON value from the (already size-limited)
// body into v: unknown fields, field names that match only when case is
// ignored, duplicate keys at any depth, nesting deeper than MaxJSONDepth and
// trailing data are errors. An empty body is an error when required, and
// leaves v untouched otherwise.
//
// The body must be UTF-8 without unpaired surrogate escapes (RFC 8259
// §8.1): encoding/json would silently turn such bytes into U+FFFD, and a
// customer id or a note would be stored other than it was sent.
func decodeJSON(r *http.Request, v any, required bool) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return errInvalidJSON("the request body could not be read")
	}
	if !utf8.Valid(body) {
		return errInvalidJSON("the request body is not valid UTF-8")
	}
	if hasLoneSurrogate(body) {
		return errInvalidJSON("the request body has a \\u escape of an unpaired UTF-16 surrogate")
	}
	if err := checkKeys(body, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			if !required {
				return nil
			}
			return errInvalidJSON("the request body is empty; send a JSON object")
		}
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return errInvalidJSON("unexpected data after the JSON value")
	}
	return nil
}

// hasLoneSurrogate reports whether the JSON strings in b hold a \u escape
// of a UTF-16 surrogate that is not half of a high-low pair. It only needs
// to be exact for valid JSON; anything else fails to decode anyway.
func hasLoneSurrogate(b []byte) bool {
	inString := false
	for i := 0; i < len(b); i++ {
		if !inString {
			inString = b[i] == '"'
			continue
		}
		switch b[i] {
		case '"':
			inString = false
		case '\\':
			if i+1 < len(b) && b[i+1] != 'u' {
				i++ // a one-character escape, possibly \" or \\
				continue
			}
			r, ok := hex4(b, i+2)
			if !ok {
				return false
			}
			i += 5 // the last hex digit
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return true
			case r >= 0xD800 && r <= 0xDBFF:
				if i+2 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' {
					return true
				}
				low, ok := hex4(b, i+3)
				if !ok || low < 0xDC00 || low > 0xDFFF {
					return true
				}
				i += 6
			}
		}
	}
	return false
}

// hex4 reads the four hex digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// jsonError turns a decoding error into the API's codes.
func jsonError(err error) error {
	var (
		he        *httpError
		tooBig    *http.MaxBytesError
		syntax    *json.SyntaxError
		wrongType *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &he), errors.As(err, &tooBig):
		return err
	case errors.As(err, &syntax):
		return errInvalidJSON("malformed JSON near byte %d", syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errInvalidJSON("the JSON value is truncated")
	case errors.As(err, &wrongType):
		if wrongType.Field == "" {
			return errInvalidJSON("the request body must be a JSON object")
		}
		return errInvalidRequest("field %q must be a JSON %s", wrongType.Field, jsonKind(wrongType.Type.Kind().String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return errInvalidRequest("unknown field %s", truncate(strings.TrimPrefix(err.Error(), "json: unknown field "), 100))
	}
	return errInvalidJSON("the request body is not valid JSON")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	}
	return "number"
}

// decimalText is a money amount on the wire: a JSON string holding a
// decimal number ("150.00"). A JSON number is refused: binary floating
// point cannot carry money exactly, and a client sending 150.1 would not
// notice it meant 150.09999….
type decimalText struct {
	text string
	set  bool
}

// UnmarshalJSON accepts a string or null (absent) and refuses numbers.
func (d *decimalText) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		if err := json.Unmarshal(b, &d.text); err != nil {
			return errInvalidAmount("amount must be a decimal string such as \"150.00\"")
		}
		d.set = true
		return nil
	}
	return errInvalidAmount("amount must be a decimal string such as \"150.00\", not a JSON number or other value")
}

// validateText checks free text a client sends (descriptions, notes):
// valid UTF-8, no control characters, at most maxLen bytes.
func validateText(field, s string, maxLen int) error {
	if len(s) > maxLen {
		return errInvalidRequest("%s is longer than %d bytes", field, maxLen)
	}
	if !utf8.ValidString(s) {
		return errInvalidRequest("%s is not valid UTF-8", field)
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return errInvalidRequest("%s contains a control character", field)
	}
	return nil
}

// queryLimit reads ?limit=: 1..MaxPageLimit, DefaultPageLimit when absent.
func queryLimit(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return DefaultPageLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxPageLimit {
		return 0, errInvalidRequest("limit must be an integer from 1 to %d", MaxPageLimit)
	}
	return n, nil
}

// queryTime reads an optional RFC 3339 time parameter, to the microsecond
// (what the ledger keeps, and what answers echo). A '+' in an offset that
// arrived unescaped (and so decoded as a space) is put back.
func queryTime(q url.Values, name string) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, strings.ReplaceAll(v, " ", "+"))
	if err != nil {
		return time.Time{}, errInvalidRequest("%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z", name)
	}
	return t.UTC().Truncate(time.Microsecond), nil
}

// queryRange reads ?from= and ?to= (a half-open interval [from, to)).
func queryRange(q url.Values) (from, to time.Time, err error) {
	if from, err = queryTime(q, "from"); err != nil {
		return
	}
	if to, err = queryTime(q, "to"); err != nil {
		return
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		err = errInvalidRequest("from must be before to")
	}
	return
}

// Cursor kinds: a cursor names what it pages through, so one taken from a
// list of accounts cannot be replayed against deposits.
const (
	cursorAccount   = "account"
	cursorDeposit   = "deposit"
	cursorException = "exception"
	cursorStatement = "statement"
	cursorCallback  = "callback"
)

// encodeCursor makes the opaque cursor after value: base64url of
// "kind:value". Clients must not build or parse it.
func encodeCursor(kind, value string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + value))
}

// queryCursor reads ?cursor= of the given kind; "" when absent.
func queryCursor(q url.Values, kind string) (string, error) {
	v := q.Get("cursor")
	if v == "" {
		return "", nil
	}
	bad := errInvalidRequest("cursor is not one this list returned")
	if len(v) > MaxCursorLen {
		return "", bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return "", bad
	}
	gotKind, value, ok := strings.Cut(string(raw), ":")
	if !ok || gotKind != kind || value == "" {
		return "", bad
	}
	return value, nil
}

// querySeqCursor reads a cursor holding a positive integer.
func querySeqCursor(q url.Values, kind string) (int64, error) {
	v, err := queryCursor(q, kind)
	if err != nil || v == "" {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, errInvalidRequest("cursor is not one this list returned")
	}
	return n, nil
}

// nextCursor is the cursor after a page: set only when the page is full,
// so a short page tells the client it has everything.
func nextCursor(kind string, count, limit int, last string) *string {
	if count < limit || count == 0 {
		return nil
	}
	c := encodeCursor(kind, last)
	return &c
}
