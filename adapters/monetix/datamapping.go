package monetix

import (
	"fmt"
	"slices"
	"strings"
)

// The Data API's member names that the vendor's public reference does not
// show (docs/protocol.md §9). Known, and fixed here: the request's
// interval, token and signature, and the items' project_id, payment_id,
// operation_id, operation_created_at and operation_completed_at. Every
// other name Tiyn needs is in one DataMapping, whose default is Tiyn's
// reading of the reference's descriptions; TIYN_MONETIX_DATA_MAPPING
// overrides any of it (ParseDataMapping) once Monetix confirms the names.

// Data API members that are known.
const (
	dataToken       = "token"
	dataSignature   = "signature"
	dataInterval    = "interval"
	dataProjectID   = "project_id"
	dataPaymentID   = "payment_id"
	dataOperationID = "operation_id"
	dataCreatedAt   = "operation_created_at"
	dataCompletedAt = "operation_completed_at"
)

// DataMapping names the Data API members the reference leaves out. A
// member is a name, or a dotted path of names into nested objects
// ("sum_initial.amount", "pagination.limit").
type DataMapping struct {
	// IntervalFrom and IntervalTo are the members of the request's
	// interval object holding its start and end (YYYY-MM-DD hh:mm:ss).
	IntervalFrom string
	IntervalTo   string
	// TimeZone is the request member naming the IANA time zone of the
	// interval and of the times in the answer.
	TimeZone string
	// Limit and Offset are the request's page size and start.
	Limit  string
	Offset string
	// Fields is the request member listing the item members to return
	// ("" sends no list: the answer then holds only what the platform
	// calls required, which may leave out the amount).
	Fields string
	// Projects is the request member listing project ids (sent only when
	// projects are configured; without it the platform answers for every
	// project of the token's user).
	Projects string
	// Items is the answer's member holding the page's operations.
	Items string
	// OperationType, OperationStatus, Amount and Currency are item members.
	OperationType   string
	OperationStatus string
	Amount          string
	Currency        string
	// AmountUnits is how the answer writes Amount: the Gate's minor units
	// by default.
	AmountUnits AmountUnits
}

// DefaultDataMapping is Tiyn's reading of the vendor's Data API reference
// where it shows descriptions and no names:
//
//	interval_from=from, interval_to=to       the interval's "start and end times"
//	time_zone=time_zone                      "name of time zone for the time period"
//	limit=limit, offset=offset               "number of entries … per request", "pagination start offset"
//	fields=fields                            "an array of one or more parameter names …"
//	projects=project_ids                     "array of one or more project IDs"
//	items=operations                         the answer's list of OperationItem
//	operation_type=operation_type            named like operation_id, operation_completed_at
//	operation_status=operation_status
//	amount=sum_initial.amount                "amount and currency code … as specified in the
//	currency=sum_initial.currency             initial request": a callback's sum_initial
//	amount_units=minor                       as every other amount of the platform
func DefaultDataMapping() DataMapping {
	return DataMapping{
		IntervalFrom: "from", IntervalTo: "to", TimeZone: "time_zone",
		Limit: "limit", Offset: "offset", Fields: "fields", Projects: "project_ids",
		Items: "operations", OperationType: "operation_type", OperationStatus: "operation_status",
		Amount: "sum_initial.amount", Currency: "sum_initial.currency", AmountUnits: AmountMinor,
	}
}

// dataMappingKey is one key of a DataMapping and its member.
type dataMappingKey struct {
	key      string
	member   func(*DataMapping) *string
	optional bool // may be empty: not sent
}

// dataMappingKeys are the mapping's keys, in the order String prints
// them; amount_units is the last, and not a member.
var dataMappingKeys = []dataMappingKey{
	{"interval_from", func(m *DataMapping) *string { return &m.IntervalFrom }, false},
	{"interval_to", func(m *DataMapping) *string { return &m.IntervalTo }, false},
	{"time_zone", func(m *DataMapping) *string { return &m.TimeZone }, false},
	{"limit", func(m *DataMapping) *string { return &m.Limit }, false},
	{"offset", func(m *DataMapping) *string { return &m.Offset }, false},
	{"fields", func(m *DataMapping) *string { return &m.Fields }, true},
	{"projects", func(m *DataMapping) *string { return &m.Projects }, true},
	{"items", func(m *DataMapping) *string { return &m.Items }, false},
	{"operation_type", func(m *DataMapping) *string { return &m.OperationType }, false},
	{"operation_status", func(m *DataMapping) *string { return &m.OperationStatus }, false},
	{"amount", func(m *DataMapping) *string { return &m.Amount }, false},
	{"currency", func(m *DataMapping) *string { return &m.Currency }, false},
}

const keyAmountUnits = "amount_units"

// DataMappingKeys lists the mapping's keys.
func DataMappingKeys() []string {
	keys := make([]string, 0, len(dataMappingKeys)+1)
	for _, k := range dataMappingKeys {
		keys = append(keys, k.key)
	}
	return append(keys, keyAmountUnits)
}

// String prints the mapping as ParseDataMapping reads it:
// "interval_from=from, interval_to=to, …, amount_units=minor".
func (m DataMapping) String() string {
	parts := make([]string, 0, len(dataMappingKeys)+1)
	for _, k := range dataMappingKeys {
		parts = append(parts, k.key+"="+*k.member(&m))
	}
	return strings.Join(append(parts, keyAmountUnits+"="+m.AmountUnits.String()), ", ")
}

// ParseDataMapping reads TIYN_MONETIX_DATA_MAPPING: comma-separated
// KEY=MEMBER entries (the syntax of ParseColumns) overriding
// DefaultDataMapping; keys not given keep their default. KEY is one of
// DataMappingKeys; MEMBER is a name or a dotted path; fields= and
// projects= (empty) send no such member; amount_units is major or minor.
// "" is the default mapping.
func ParseDataMapping(s string) (DataMapping, error) {
	m := DefaultDataMapping()
	if strings.TrimSpace(s) == "" {
		return m, nil
	}
	seen := map[string]bool{}
	for entry := range strings.SplitSeq(s, ",") {
		key, member, ok := strings.Cut(entry, "=")
		key, member = strings.TrimSpace(key), strings.TrimSpace(member)
		if !ok || key == "" {
			return DataMapping{}, fmt.Errorf("data mapping: %q is not KEY=MEMBER", truncateText(strings.TrimSpace(entry), 80))
		}
		if seen[key] {
			return DataMapping{}, fmt.Errorf("data mapping: %s is given twice", truncateText(key, 40))
		}
		seen[key] = true
		if key == keyAmountUnits {
			u, err := ParseAmountUnits(member)
			if err != nil {
				return DataMapping{}, fmt.Errorf("data mapping: %w", err)
			}
			m.AmountUnits = u
			continue
		}
		i := slices.IndexFunc(dataMappingKeys, func(k dataMappingKey) bool { return k.key == key })
		if i < 0 {
			return DataMapping{}, fmt.Errorf("data mapping: %q is not a key; the keys are %s",
				truncateText(key, 40), strings.Join(DataMappingKeys(), ", "))
		}
		*dataMappingKeys[i].member(&m) = member
	}
	if err := m.Validate(); err != nil {
		return DataMapping{}, err
	}
	return m, nil
}

// Validate checks every member path (names of letters, digits, '_' and
// '-', joined by '.'), that only fields and projects are empty, and that
// no two members of the request, or of an item, are the same or one
// inside the other (nor a known member).
func (m DataMapping) Validate() error {
	for _, k := range dataMappingKeys {
		v := *k.member(&m)
		if v == "" && k.optional {
			continue
		}
		if !validMemberPath(v) {
			return fmt.Errorf("data mapping: %s=%q is not a member name or a dotted path of names", k.key, truncateText(v, 64))
		}
	}
	if m.AmountUnits != AmountMajor && m.AmountUnits != AmountMinor {
		return fmt.Errorf("data mapping: amount units %d", m.AmountUnits)
	}
	request := map[string]string{"token": dataToken, "signature": dataSignature, "interval": dataInterval,
		"time_zone": m.TimeZone, "limit": m.Limit, "offset": m.Offset, "fields": m.Fields, "projects": m.Projects}
	if err := disjointPaths("request", request); err != nil {
		return err
	}
	if err := disjointPaths("interval", map[string]string{"interval_from": m.IntervalFrom, "interval_to": m.IntervalTo}); err != nil {
		return err
	}
	if err := disjointPaths("answer", map[string]string{"items": m.Items, "signature": dataSignature}); err != nil {
		return err
	}
	item := map[string]string{
		"project_id": dataProjectID, "payment_id": dataPaymentID, "operation_id": dataOperationID,
		"operation_created_at": dataCreatedAt, "operation_completed_at": dataCompletedAt,
		"operation_type": m.OperationType, "operation_status": m.OperationStatus, "amount": m.Amount, "currency": m.Currency,
	}
	return disjointPaths("item", item)
}

func validMemberPath(p string) bool {
	if p == "" || len(p) > MaxWireTextLen {
		return false
	}
	for name := range strings.SplitSeq(p, ".") {
		if name == "" {
			return false
		}
		for i := 0; i < len(name); i++ {
			c := name[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				return false
			}
		}
	}
	return true
}

// disjointPaths refuses two paths that are equal or one a prefix (by
// names) of the other: they would be the same member, or a member inside
// a value. Empty paths are not sent and are skipped.
func disjointPaths(where string, paths map[string]string) error {
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, a := range keys {
		for _, b := range keys[i+1:] {
			pa, pb := paths[a], paths[b]
			if pa == "" || pb == "" {
				continue
			}
			if pa == pb || strings.HasPrefix(pa, pb+".") || strings.HasPrefix(pb, pa+".") {
				return fmt.Errorf("data mapping: %s members %s (%s) and %s (%s) overlap", where, a, pa, b, pb)
			}
		}
	}
	return nil
}

// itemFields are the item members a request asks for (the Fields list):
// the first name of each path an operation is read from, in order, once.
func (m DataMapping) itemFields() []string {
	var out []string
	for _, p := range m.itemPaths() {
		name, _, _ := strings.Cut(p, ".")
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// itemPaths are the paths of an operation's fields in an item, indexed
// like an opText.
func (m DataMapping) itemPaths() [numFields]string {
	return [numFields]string{
		fProject: dataProjectID, fPayment: dataPaymentID, fOperation: dataOperationID,
		fType: m.OperationType, fStatus: m.OperationStatus, fAmount: m.Amount, fCurrency: m.Currency,
		fCompleted: dataCompletedAt,
	}
}

// lookupPath follows a dotted path through nested objects.
func lookupPath(doc map[string]any, path string) (any, bool) {
	var cur any = doc
	for name := range strings.SplitSeq(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[name]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// setPath sets a dotted path, making the objects on the way. The mapping
// is validated, so no value stands where an object must go.
func setPath(doc map[string]any, path string, v any) {
	names := strings.Split(path, ".")
	cur := doc
	for _, name := range names[:len(names)-1] {
		next, ok := cur[name].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[name] = next
		}
		cur = next
	}
	cur[names[len(names)-1]] = v
}
