package rest

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestViewsMatchTheirSchemas: every JSON view the API answers has exactly
// the properties its OpenAPI schema lists, and every schema's required
// names are among them, so a field added to one is added to the other.
func TestViewsMatchTheirSchemas(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
				Required   []string                   `json:"required"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for name, view := range map[string]any{
		"Account": accountView{}, "AccountList": accountList{}, "Balance": balanceView{},
		"StatementLine": statementLineView{}, "Statement": statementView{}, "Debit": debitView{},
		"Deposit": depositView{}, "DepositList": depositList{}, "StatusChecks": statusChecksView{},
		"Resolution": resolutionView{}, "Exception": exceptionView{}, "ExceptionList": exceptionList{},
		"Proposal": proposalView{}, "Callback": callbackView{}, "CallbackList": callbackList{},
		"LedgerCheck": ledgerCheckView{},
		"ReconRun":    reconRunView{}, "ReconRunList": reconRunList{}, "ClassSum": classSumView{},
		"ReconItem": reconItemView{}, "ReconItemList": reconItemList{}, "ItemAmount": moneyView{},
		"Day": dayView{}, "DayBalance": dayBalanceView{}, "DayTotals": dayTotalsView{}, "DaySideTotals": sideTotalsView{},
		"CloseDayRequest": closeDayRequest{},
	} {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("no schema %s", name)
			continue
		}
		var fields []string
		typ := reflect.TypeOf(view)
		for i := range typ.NumField() {
			tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if tag != "" && tag != "-" {
				fields = append(fields, tag)
			}
		}
		var props []string
		for p := range schema.Properties {
			props = append(props, p)
		}
		slices.Sort(fields)
		slices.Sort(props)
		if !slices.Equal(fields, props) {
			t.Errorf("%s: view fields %v\n schema properties %v", name, fields, props)
		}
		for _, r := range schema.Required {
			if !slices.Contains(fields, r) {
				t.Errorf("%s: required %q is not a field of the view", name, r)
			}
		}
	}
}
