package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// Evidence is shown pretty-printed, key order kept as the platform sent
// it, with the lines that state the claimed amount and currency marked
// (and marked as differing when they differ from the deposit). A body that
// is not JSON is shown as received.

// evidenceLine is one line of pretty-printed evidence.
type evidenceLine struct {
	Indent int
	Pad    string // the indentation as spaces
	Text   string
	// Claim marks a line stating an amount or currency of a sum object;
	// Differs marks one whose value differs from the deposit's.
	Claim   bool
	Differs bool
}

// Bounds of the pretty printer: evidence beyond them is shown raw.
const (
	maxEvidenceLines = 2000
	maxEvidenceDepth = 32
)

// differs is what the evidence is compared with: the deposit's amount in
// minor units and its currency ("" when there is no deposit).
type differs struct {
	amountMinor string
	currency    string
}

// prettyEvidence returns body as lines; ok is false (and the lines are the
// raw body's) when body is not a JSON object or array within the bounds.
func prettyEvidence(body string, against *differs) []evidenceLine {
	lines, err := prettyJSON(body, against)
	if err != nil {
		var out []evidenceLine
		for i, l := range strings.Split(body, "\n") {
			if i >= maxEvidenceLines {
				break
			}
			out = append(out, evidenceLine{Text: l})
		}
		return out
	}
	return lines
}

var errTooLarge = errors.New("evidence too large to pretty-print")

type frame struct {
	object bool
	key    string // the key of this container in its parent
	n      int    // members so far
}

func prettyJSON(body string, against *differs) ([]evidenceLine, error) {
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	var (
		out     []evidenceLine
		stack   []frame
		pending string // "key": awaiting its value
		expect  bool   // the next token is an object member's value
	)
	emit := func(l evidenceLine) error {
		if len(out) >= maxEvidenceLines {
			return errTooLarge
		}
		out = append(out, l)
		return nil
	}
	// comma adds a trailing comma to the previous line of the same level.
	comma := func() {
		if len(stack) > 0 && stack[len(stack)-1].n > 0 && len(out) > 0 {
			out[len(out)-1].Text += ","
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		depth := len(stack)
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			closer := string(d)
			if err := emit(evidenceLine{Indent: len(stack), Text: closer}); err != nil {
				return nil, err
			}
			if len(stack) > 0 {
				stack[len(stack)-1].n++
			}
			continue
		}
		if depth == 0 && len(out) > 0 {
			return nil, errors.New("more than one JSON value")
		}
		inObject := depth > 0 && stack[depth-1].object
		if inObject && !expect {
			// A key.
			comma()
			k, _ := tok.(string)
			b, _ := json.Marshal(k)
			pending, expect = string(b)+": ", true
			continue
		}
		if !inObject && depth > 0 {
			comma()
		}
		prefix := pending
		key := ""
		if expect {
			key = strings.TrimSuffix(strings.TrimSuffix(pending, ": "), `"`)
			key = strings.TrimPrefix(key, `"`)
		}
		pending, expect = "", false
		if d, ok := tok.(json.Delim); ok {
			if len(stack) >= maxEvidenceDepth {
				return nil, errTooLarge
			}
			if err := emit(evidenceLine{Indent: depth, Text: prefix + string(d)}); err != nil {
				return nil, err
			}
			stack = append(stack, frame{object: d == '{', key: key})
			continue
		}
		var text string
		switch v := tok.(type) {
		case string:
			b, _ := json.Marshal(v)
			text = string(b)
		case json.Number:
			text = v.String()
		case bool:
			if v {
				text = "true"
			} else {
				text = "false"
			}
		case nil:
			text = "null"
		}
		line := evidenceLine{Indent: depth, Text: prefix + text}
		if depth > 0 && strings.HasPrefix(stack[depth-1].key, "sum") && (key == "amount" || key == "currency") {
			line.Claim = true
			if against != nil {
				want := against.amountMinor
				if key == "currency" {
					want = against.currency
				}
				got := text
				if s, ok := tok.(string); ok {
					got = s
				}
				line.Differs = want != "" && got != want
			}
		}
		if err := emit(line); err != nil {
			return nil, err
		}
		if depth > 0 {
			stack[depth-1].n++
		}
	}
	if len(stack) != 0 {
		return nil, io.ErrUnexpectedEOF
	}
	if len(out) == 0 || !(strings.HasSuffix(out[0].Text, "{") || strings.HasSuffix(out[0].Text, "[")) {
		return nil, errors.New("not a JSON object or array")
	}
	for i := range out {
		out[i].Pad = strings.Repeat("  ", out[i].Indent)
	}
	return out, nil
}

// indentText renders lines as one text block (for tests and logs).
func indentText(lines []evidenceLine) string {
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l.Pad)
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	return b.String()
}
