// Package signature implements the Monetix (ECommPay Gate) message signature:
// Base64(HMAC-SHA512(secret, S)), where S is the JSON body (minus every
// "signature" member) flattened into "path:value" items, sorted by path in PHP
// natural order (strnatcmp) and joined with ";".
//
// The rules follow the reference PHP SDK (ITECOMMPAY/paymentpage-sdk-php,
// SignatureHandler + Callback) as described in docs/protocol.md §1.2
// and §1.4:
//
//   - Every object member named "signature" is removed at every depth (inside
//     objects and lists), whatever its value, and every member named
//     "frame_mode" is skipped at every depth.
//   - A member's path is the parent path, ":", then the member name with each
//     ":" doubled ("::"). List elements are named by their 0-based index.
//     As in PHP, which adds the parent path and ":" only when the parent
//     path is truthy, a parent path of "" or "0" adds no prefix at all, so
//     {"0":{"a":1}} yields "a:1", not "0:a:1".
//   - Empty objects and lists contribute nothing. Each scalar leaf yields one
//     item "path:text": strings as decoded (no quoting or escaping), true "1",
//     false "0", null "", an integer literal verbatim, and any other number the
//     way PHP's (string) cast prints a float (precision=14, see appendPHPFloat).
//   - Items are sorted by path only with PHP's strnatcmp (see Compare). Ties
//     (distinct paths that strnatcmp calls equal, e.g. "a b" and "ab") are
//     broken by plain byte order of the whole "path:value" item, because a Go
//     map has no document order to fall back on as PHP's stable sort does.
//
// Differences from the PHP reference (checked against PHP 8.2 running the
// SDK's logic), none of which should arise in a real Monetix message, are
// deliberate: integer literals are signed verbatim (PHP
// turns integers beyond int64 into floats and prints "-0" as "0"); a
// "signature" member whose value is null is removed too (PHP's isset() keeps
// it); ties between distinct paths are broken by bytes rather than document
// order; and top-level keys that are canonical decimal integers are sorted by
// their text, whereas PHP's array_merge renumbers them when a nested object or
// list follows them in the document. Paths that collide because of the
// ambiguous ':' escape (e.g. {"a:":{"b":1}} and {"a":{":b":2}}) are all kept,
// where PHP keeps only the last one.
//
// Decoding always goes through Decode (encoding/json with UseNumber) so that
// large integers such as operation.id are never rounded through float64.
//
// All functions are safe for concurrent use and never panic on any body.
package signature

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrMalformed is returned when a body cannot be signed or verified at all:
// it is not valid UTF-8 JSON, its top level is not an object, data follows
// the object, a \u escape is an unpaired UTF-16 surrogate (PHP's json_decode
// rejects these too), or objects/lists nest deeper than MaxDepth. Callers
// should answer such requests with HTTP 400. Errors returned by Decode wrap it
// (use errors.Is).
var ErrMalformed = errors.New("monetix signature: malformed JSON body")

// ErrInvalidSignature is returned by Verify and VerifyBody when the top-level
// "signature" member is missing, is not a string, is not the Base64 encoding
// of a 64-byte HMAC-SHA512, or does not match. Callers should reject the
// message (HTTP 400) and alert: Gate keeps retrying callbacks it considers
// undelivered. Returned errors wrap it with the reason (use errors.Is).
var ErrInvalidSignature = errors.New("monetix signature: invalid signature")

// ErrNoSecret is returned by Verify and VerifyBody when the secret is empty.
// An empty HMAC key is public knowledge, so verifying with it would accept
// forged messages; this is a configuration error (answer HTTP 500), not a bad
// message, and therefore deliberately does not wrap ErrInvalidSignature.
var ErrNoSecret = errors.New("monetix signature: empty secret key")

// MaxDepth is the deepest nesting of objects and lists that Decode accepts;
// the top-level object counts as depth 1, so {"a":{"b":[1]}} has depth 3.
// The Monetix messages in docs/protocol.md nest 3 levels (top level, operation,
// sum_initial), so 32 leaves ample room while bounding the recursion of the
// flattener and the work an attacker can cause with a body of brackets. Deeper bodies
// are rejected with ErrMalformed before any decoding. For documents built in
// Go and passed to Sign or StringToSign directly, containers deeper than
// MaxDepth contribute nothing (which also stops self-referencing maps).
const MaxDepth = 32

// signatureKey is the member removed before signing, at every depth.
const signatureKey = "signature"

// frameModeKey is the member the reference SDK always ignores, at every depth.
const frameModeKey = "frame_mode"

// encodedLen is the length of Base64 (standard, padded) of a SHA-512 HMAC.
var encodedLen = base64.StdEncoding.EncodedLen(sha512.Size)

// strictBase64 rejects non-zero padding bits, so each 64-byte MAC has exactly
// one accepted textual form (as with the SDKs' plain string comparison).
var strictBase64 = base64.StdEncoding.Strict()

var (
	errInvalidUTF8  = fmt.Errorf("%w: body is not valid UTF-8", ErrMalformed)
	errSurrogate    = fmt.Errorf("%w: unpaired UTF-16 surrogate in \\u escape", ErrMalformed)
	errTooDeep      = fmt.Errorf("%w: nesting deeper than %d", ErrMalformed, MaxDepth)
	errNotObject    = fmt.Errorf("%w: top level is not a JSON object", ErrMalformed)
	errTrailing     = fmt.Errorf("%w: data after the top-level object", ErrMalformed)
	errSigMissing   = fmt.Errorf("%w: no top-level signature member", ErrInvalidSignature)
	errSigNotString = fmt.Errorf("%w: signature member is not a string", ErrInvalidSignature)
	errSigEncoding  = fmt.Errorf("%w: signature is not Base64 of a 64-byte HMAC-SHA512", ErrInvalidSignature)
	errSigMismatch  = fmt.Errorf("%w: signature does not match", ErrInvalidSignature)
)

// Decode parses a JSON body into a tree of map[string]any, []any,
// json.Number, string, bool and nil (numbers are kept as their literal text
// via UseNumber). The top level must be an object; trailing non-whitespace
// data, invalid UTF-8, unpaired surrogate escapes and nesting deeper than
// MaxDepth are rejected. Every error wraps ErrMalformed.
func Decode(body []byte) (map[string]any, error) {
	if err := precheck(body); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if off := dec.InputOffset(); off < 0 || off > int64(len(body)) || !onlyJSONSpace(body[off:]) {
		return nil, errTrailing
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, errNotObject
	}
	return doc, nil
}

// StringToSign returns the string that is MACed for doc: the flattened,
// naturally sorted, ";"-joined items, with "signature" members removed at
// every depth and "frame_mode" members skipped. It is exported for logging
// and debugging signature mismatches; it contains the whole message, so log
// it only where the message itself may be logged.
func StringToSign(doc map[string]any) string {
	f := getFlattener()
	defer putFlattener(f)
	return string(f.stringToSign(doc))
}

// Sign returns Base64(HMAC-SHA512(secret, StringToSign(doc))), the value to
// put into the top-level "signature" member (or general.signature for Gate
// requests). Any "signature" members already present in doc are ignored.
func Sign(secret []byte, doc map[string]any) string {
	f := getFlattener()
	defer putFlattener(f)
	mac := f.mac(secret, doc)
	enc := f.enc[:encodedLen]
	base64.StdEncoding.Encode(enc, mac)
	return string(enc)
}

// SignBody decodes body with Decode and signs it with Sign. The error, if
// any, wraps ErrMalformed.
func SignBody(secret []byte, body []byte) (string, error) {
	doc, err := Decode(body)
	if err != nil {
		return "", err
	}
	return Sign(secret, doc), nil
}

// Verify checks the top-level "signature" member of doc against secret. The
// member must be a string holding the standard padded Base64 of a 64-byte
// MAC; the decoded bytes are compared with hmac.Equal (constant time).
// It returns nil on success, ErrNoSecret for an empty secret, and otherwise
// an error wrapping ErrInvalidSignature. Signatures nested elsewhere (e.g.
// general.signature) are ignored, not checked.
func Verify(secret []byte, doc map[string]any) error {
	if len(secret) == 0 {
		return ErrNoSecret
	}
	raw, ok := doc[signatureKey]
	if !ok {
		return errSigMissing
	}
	got, ok := raw.(string)
	if !ok {
		return errSigNotString
	}
	if len(got) != encodedLen {
		return errSigEncoding
	}
	f := getFlattener()
	defer putFlattener(f)
	src := append(f.enc[:0], got...)
	dst := f.got[:]
	n, err := strictBase64.Decode(dst, src)
	if err != nil || n != sha512.Size {
		return errSigEncoding
	}
	if !hmac.Equal(f.mac(secret, doc), dst[:n]) {
		return errSigMismatch
	}
	return nil
}

// VerifyBody decodes body with Decode and checks it with Verify. On success
// it returns the decoded document; on any error it returns nil so that an
// unauthenticated document cannot be used by mistake (log the raw body
// instead). Errors wrap ErrMalformed or ErrInvalidSignature, or are
// ErrNoSecret.
func VerifyBody(secret []byte, body []byte) (map[string]any, error) {
	if len(secret) == 0 {
		return nil, ErrNoSecret
	}
	doc, err := Decode(body)
	if err != nil {
		return nil, err
	}
	if err := Verify(secret, doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// precheck validates what encoding/json does not (UTF-8 validity, unpaired
// surrogate escapes) and enforces MaxDepth in one linear pass without
// recursion, before any allocation-heavy decoding. It only needs to be exact
// for syntactically valid JSON; anything else is rejected by the decoder.
func precheck(body []byte) error {
	if !utf8.Valid(body) {
		return errInvalidUTF8
	}
	// Reject a non-object top level early (also covers empty bodies).
	i := 0
	for i < len(body) && isJSONSpace(body[i]) {
		i++
	}
	if i == len(body) || body[i] != '{' {
		return errNotObject
	}
	depth := 0
	for ; i < len(body); i++ {
		switch body[i] {
		case '"':
			end, err := scanString(body, i+1)
			if err != nil {
				return err
			}
			i = end
		case '{', '[':
			depth++
			if depth > MaxDepth {
				return errTooDeep
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// scanString returns the index of the quote closing the string whose
// contents start at i (or len(b) if unterminated), checking that every \u
// escape for a UTF-16 surrogate is part of a high+low pair.
func scanString(b []byte, i int) (int, error) {
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			return i, nil
		case '\\':
			i++
			if i >= len(b) || b[i] != 'u' {
				continue // simple escape (or truncated body: the decoder reports it)
			}
			r, ok := hex4(b, i+1)
			if !ok {
				continue // invalid escape: the decoder reports it
			}
			i += 4
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return 0, errSurrogate
			case r >= 0xD800 && r <= 0xDBFF:
				if i+2 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' {
					return 0, errSurrogate
				}
				lo, ok := hex4(b, i+3)
				if !ok || lo < 0xDC00 || lo > 0xDFFF {
					return 0, errSurrogate
				}
				i += 6
			}
		}
	}
	return len(b), nil
}

// hex4 parses the 4 hex digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func onlyJSONSpace(b []byte) bool {
	for _, c := range b {
		if !isJSONSpace(c) {
			return false
		}
	}
	return true
}
