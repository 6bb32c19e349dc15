package monetix_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/domain"
)

func TestParseProjects(t *testing.T) {
	t.Parallel()
	lim := func(lo, hi int64) *domain.AmountLimits { return &domain.AmountLimits{MinMinor: lo, MaxMinor: hi} }
	for _, tc := range []struct {
		name string
		in   string
		want []monetix.Project
	}{
		{"one", "1234=secret", []monetix.Project{{ID: "1234", Secret: []byte("secret")}}},
		{"two with spaces", " 1234 = s1 , 5678=s2,", []monetix.Project{
			{ID: "1234", Secret: []byte("s1")}, {ID: "5678", Secret: []byte("s2")}}},
		{"secret with '='", "1=abc==", []monetix.Project{{ID: "1", Secret: []byte("abc==")}}},
		{"file form", "# projects\n\n1234=s1\r\n  # old: 99=x\n5678=s2;sign_answers=true\n", []monetix.Project{
			{ID: "1234", Secret: []byte("s1")}, {ID: "5678", Secret: []byte("s2"), SignAnswers: true}}},
		{"limits", "1234=s;min=1.00;max=200000.00", []monetix.Project{
			{ID: "1234", Secret: []byte("s"), Limits: lim(100, 20_000_000)}}},
		{"limits without decimals, all options", "1234=s; max=10 ;min=5;sign_answers=1;", []monetix.Project{
			{ID: "1234", Secret: []byte("s"), Limits: lim(500, 1000), SignAnswers: true}}},
		{"max int64 id", "9223372036854775807=s", []monetix.Project{{ID: "9223372036854775807", Secret: []byte("s")}}},
	} {
		got, err := monetix.ParseProjects(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if fmt.Sprint(describe(got)) != fmt.Sprint(describe(tc.want)) {
			t.Errorf("%s:\n got %v\nwant %v", tc.name, describe(got), describe(tc.want))
		}
	}
}

// describe renders projects with their secrets, for comparisons only.
func describe(ps []monetix.Project) []string {
	var out []string
	for _, p := range ps {
		s := p.ID + "=" + string(p.Secret)
		if p.Limits != nil {
			s += fmt.Sprintf(";%d-%d", p.Limits.MinMinor, p.Limits.MaxMinor)
		}
		out = append(out, fmt.Sprintf("%s;%v", s, p.SignAnswers))
	}
	return out
}

func TestParseProjectsErrors(t *testing.T) {
	t.Parallel()
	const secret = "TopSecretValue42"
	for _, tc := range []struct {
		in   string
		want string // substring of the error
	}{
		{"", "no project configured"},
		{"# only a comment\n\n", "no project configured"},
		{secret, "entry 1 (line 1): want ID=SECRET"},
		{"1234=" + secret + ",abc=" + secret, "entry 2 (line 1): project id must be a positive integer"},
		{secret + "=1234", "project id must be a positive integer"},
		{"-5=" + secret, "project id must be a positive integer"},
		{"0=" + secret, "project id must be a positive integer"},
		{"01234=" + secret, "project id must be a positive integer"},
		{"9223372036854775808=" + secret, "project id must be a positive integer"},
		{"1234=", "entry 1 (line 1): project 1234 has an empty secret"},
		{"1234=  ;min=1;max=2", "project 1234 has an empty secret"},
		{"1234=" + secret + "\n\n5678=x\n1234=" + secret, "entry 3 (line 4): project id 1234 duplicates entry 1"},
		{"1234=" + secret + ";min=1.00", "give both min and max"},
		{"1234=" + secret + ";min=1.001;max=5", "min: invalid amount"},
		{"1234=" + secret + ";min=0;max=5", "must be greater than zero"},
		{"1234=" + secret + ";min=10;max=5", "project 1234: min 10.00 KZT is above max 5.00 KZT"},
		{"1234=" + secret + ";sign_answers=maybe", "sign_answers must be true or false"},
		{"1234=" + secret + ";colour=blue", `unknown option "colour"`},
		{"1234=" + secret + ";min", `option "min" needs a value`},
		{"1234=" + strings.Repeat("k", monetix.MaxSecretLen+1), "secret longer than"},
	} {
		_, err := monetix.ParseProjects(tc.in)
		if err == nil {
			t.Errorf("%.40q: no error", tc.in)
			continue
		}
		if !isErrIs(err, monetix.ErrInvalidProjects) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.40q: %v, want %q", tc.in, err, tc.want)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%.40q: error echoes the secret: %v", tc.in, err)
		}
	}
}

func TestProjectNeverPrintsSecret(t *testing.T) {
	t.Parallel()
	p := monetix.Project{ID: "1234", Secret: []byte("TopSecretValue42")}
	for _, s := range []string{fmt.Sprint(p), fmt.Sprintf("%v %+v %#v %s", p, p, p, p), fmt.Sprint([]monetix.Project{p})} {
		if strings.Contains(s, "TopSecret") || !strings.Contains(s, "1234") {
			t.Errorf("printed project: %q", s)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	good := func() monetix.Config { return monetix.Config{Projects: testProjects()} }
	for _, tc := range []struct {
		name string
		cfg  func() monetix.Config
		nil  bool
		want string
	}{
		{"nil ledger", good, true, "nil ledger"},
		{"no projects", func() monetix.Config { return monetix.Config{} }, false, "no project"},
		{"duplicate project", func() monetix.Config {
			c := good()
			c.Projects = append(c.Projects, monetix.Project{ID: p1ID, Secret: []byte("x")})
			return c
		}, false, "configured twice"},
		{"empty secret", func() monetix.Config {
			return monetix.Config{Projects: []monetix.Project{{ID: "1"}}}
		}, false, "empty secret"},
		{"bad project id", func() monetix.Config {
			return monetix.Config{Projects: []monetix.Project{{ID: "x1", Secret: []byte("s")}}}
		}, false, "positive integer"},
		{"bad project limits", func() monetix.Config {
			return monetix.Config{Projects: []monetix.Project{{ID: "1", Secret: []byte("s"), Limits: &domain.AmountLimits{MinMinor: 5, MaxMinor: 1}}}}
		}, false, "project 1: min 0.05 KZT is above max 0.01 KZT"},
		{"method without currency", func() monetix.Config {
			c := good()
			c.Methods = []monetix.Method{{Name: "x", Limits: monetix.Kassa24.Limits}}
			return c
		}, false, "no currency"},
		{"method name with colon", func() monetix.Config {
			c := good()
			m := monetix.Kassa24
			m.Name = "a:b"
			c.Methods = []monetix.Method{m}
			return c
		}, false, "may hold only ASCII letters, digits and punctuation other than ':'"},
		{"method limits", func() monetix.Config {
			c := good()
			m := monetix.Kassa24
			m.Limits = domain.AmountLimits{}
			c.Methods = []monetix.Method{m}
			return c
		}, false, "method kassa24: limits need 0 < min (0.00 KZT) <= max (0.00 KZT)"},
		{"duplicate method", func() monetix.Config {
			c := good()
			m := monetix.Kassa24
			m.Name = "KASSA24"
			c.Methods = []monetix.Method{monetix.Kassa24, m}
			return c
		}, false, "configured twice"},
		{"negative body limit", func() monetix.Config {
			c := good()
			c.MaxBodyBytes = -1
			return c
		}, false, "negative MaxBodyBytes"},
	} {
		ledger := newFakeLedger()
		var h *monetix.Handler
		var err error
		if tc.nil {
			h, err = monetix.New(nil, tc.cfg())
		} else {
			h, err = monetix.New(ledger, tc.cfg())
		}
		if err == nil || h != nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := monetix.New(newFakeLedger(), good()); err != nil {
		t.Fatalf("good config: %v", err)
	}
}

// TestSecretsAreCopied: wiping the caller's copy of a secret after New must
// not change what the handler verifies with.
func TestSecretsAreCopied(t *testing.T) {
	t.Parallel()
	secret := []byte("wipe-me-after-use")
	l := newFakeLedger()
	h, err := monetix.New(l, monetix.Config{Projects: []monetix.Project{{ID: "42", Secret: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	body := sign(t, []byte("wipe-me-after-use"), monetix.VerifyRequestBody("42", "nobody"))
	clear(secret)
	rec := newRecorder()
	h.ServeRequests(rec, newJSONRequest(monetix.RequestsPath, body))
	a, err := monetix.ParseAnswer(rec.Body.Bytes(), nil)
	if err != nil || a.Code != monetix.CodeAccountNotFound {
		t.Fatalf("answer %+v %v", a, err)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status, opType, opStatus string
		kind                     domain.OutcomeKind
		text                     string
	}{
		{"success", "sale", "success", domain.OutcomeSuccess, "success"},
		// Only the platform's own spelling is evidence (docs/protocol.md §3).
		{"success", "", "success", domain.OutcomeIntermediate, `success (operation "" "success")`},
		{"success", "SALE", "success", domain.OutcomeIntermediate, `success (operation "SALE" "success")`},
		{"success", "sale", "SUCCESS", domain.OutcomeIntermediate, `success (operation "sale" "SUCCESS")`},
		{"success", "sale", " success", domain.OutcomeIntermediate, `success (operation "sale" " success")`},
		{" Success ", "SALE", "Success", domain.OutcomeIntermediate, " Success "},
		{"SUCCESS", "sale", "success", domain.OutcomeIntermediate, "SUCCESS"},
		{" success", "sale", "success", domain.OutcomeIntermediate, " success"},
		{"Decline", "sale", "decline", domain.OutcomeIntermediate, "Decline"},
		{"REFUNDED", "refund", "success", domain.OutcomeIntermediate, "REFUNDED"},
		{"success", "sale", "processing", domain.OutcomeIntermediate, `success (operation "sale" "processing")`},
		{"success", "refund", "success", domain.OutcomeIntermediate, `success (operation "refund" "success")`},
		{"success", "", "decline", domain.OutcomeIntermediate, `success (operation "" "decline")`},
		{"decline", "sale", "decline", domain.OutcomeDecline, "decline"},
		{"decline", "sale", "success", domain.OutcomeDecline, "decline"},
		{"error", "sale", "error", domain.OutcomeDecline, "error"},
		{"internal error", "sale", "internal error", domain.OutcomeDecline, "internal error"},
		{"external error", "sale", "external error", domain.OutcomeDecline, "external error"},
		{"expired", "sale", "expired", domain.OutcomeDecline, "expired"},
		{"refunded", "refund", "success", domain.OutcomeReversal, "refunded"},
		{"partially refunded", "refund", "success", domain.OutcomeReversal, "partially refunded"},
		{"reversed", "reversal", "success", domain.OutcomeReversal, "reversed"},
		{"partially reversed", "reversal", "success", domain.OutcomeReversal, "partially reversed"},
		{"canceled", "cancel", "success", domain.OutcomeReversal, "canceled"},
		{"cancelled", "cancel", "success", domain.OutcomeReversal, "cancelled"},
		{"chargeback", "chargeback", "success", domain.OutcomeReversal, "chargeback"},
		{"processing", "sale", "processing", domain.OutcomeIntermediate, "processing"},
		{"awaiting customer", "sale", "awaiting customer", domain.OutcomeIntermediate, "awaiting customer"},
		{"external processing", "sale", "external processing", domain.OutcomeIntermediate, "external processing"},
		{"something new", "sale", "success", domain.OutcomeIntermediate, "something new"},
		{"successful", "sale", "success", domain.OutcomeIntermediate, "successful"},
	} {
		kind, text := monetix.Classify(monetix.Callback{PaymentStatus: tc.status, OperationType: tc.opType, OperationStatus: tc.opStatus})
		if kind != tc.kind || text != tc.text {
			t.Errorf("%q/%q/%q: %s %q, want %s %q", tc.status, tc.opType, tc.opStatus, kind, text, tc.kind, tc.text)
		}
	}
}
