package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
)

const (
	testDataToken  = "ZOyTL5shY8ddhpxdQyplRPJYmGV7Kv"
	testDataSecret = "data-api-key-0123456789abcdef"
)

func TestDataSettingsUnset(t *testing.T) {
	t.Parallel()
	c, _, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Data.URL != "" || c.Data.Timeout != monetix.DefaultDataTimeout || c.Data.Mapping != monetix.DefaultDataMapping() || c.Data.RequireSignature {
		t.Fatalf("defaults %v", c.Data)
	}
	if _, err := c.DataSource(); !errors.Is(err, ErrNoDataAPI) {
		t.Fatalf("DataSource without a URL: %v", err)
	}
}

func TestDataSettings(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"TIYN_MONETIX_PROJECTS":               "1234=" + testProjectSecret + ",5678=other-secret-value",
		"TIYN_MONETIX_DATA_URL":               "https://data.example.com",
		"TIYN_MONETIX_DATA_TOKEN":             testDataToken,
		"TIYN_MONETIX_DATA_SECRET":            testDataSecret,
		"TIYN_MONETIX_DATA_TIMEOUT":           "3m",
		"TIYN_MONETIX_DATA_MAPPING":           "items=data,amount_units=major",
		"TIYN_MONETIX_DATA_REQUIRE_SIGNATURE": "true",
	}
	c, _, err := load(t, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Data.Token != testDataToken || string(c.Data.Secret) != testDataSecret || c.Data.Timeout != 3*time.Minute ||
		c.Data.Mapping.Items != "data" || c.Data.Mapping.AmountUnits != monetix.AmountMajor || !c.Data.RequireSignature ||
		c.Data.TokenFrom != "TIYN_MONETIX_DATA_TOKEN" {
		t.Fatalf("settings %v", c.Data)
	}
	src, err := c.DataSource()
	if err != nil || src.Endpoint() != "https://data.example.com/v1/operations/get" || src.Mapping().Items != "data" {
		t.Fatalf("source %v, %v", src, err)
	}
	// Nothing secret in a printed Config.
	if out := fmt.Sprintf("%v %+v", c, c); strings.Contains(out, testDataToken) || strings.Contains(out, testDataSecret) {
		t.Fatalf("a printed Config shows a Data API secret: %s", out)
	}

	// From files, the final newline dropped; a flag for either form hides
	// the environment for both.
	token := writeFile(t, "token", testDataToken+"\n")
	secret := writeFile(t, "secret", "  "+testDataSecret+"\n")
	c, _, err = load(t, map[string]string{"TIYN_MONETIX_DATA_URL": "http://127.0.0.1:9", "TIYN_MONETIX_DATA_TOKEN": "ignored",
		"TIYN_MONETIX_DATA_SECRET_FILE": secret}, "--monetix-data-token-file", token)
	if err != nil || c.Data.Token != testDataToken || string(c.Data.Secret) != testDataSecret ||
		c.Data.TokenFrom != "--monetix-data-token-file="+token {
		t.Fatalf("files: %v, %v", c.Data, err)
	}
}

func TestDataSettingsErrors(t *testing.T) {
	t.Parallel()
	whole := func(mod map[string]string) map[string]string {
		env := map[string]string{"TIYN_MONETIX_DATA_URL": "https://data.example.com",
			"TIYN_MONETIX_DATA_TOKEN": testDataToken, "TIYN_MONETIX_DATA_SECRET": testDataSecret}
		for k, v := range mod {
			if v == "" {
				delete(env, k)
			} else {
				env[k] = v
			}
		}
		return env
	}
	twoLines := writeFile(t, "two", testDataToken+"\nsecond\n")
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"a URL without a token", whole(map[string]string{"TIYN_MONETIX_DATA_TOKEN": ""}), "TIYN_MONETIX_DATA_TOKEN is not set"},
		{"a token without a URL", whole(map[string]string{"TIYN_MONETIX_DATA_URL": ""}), "TIYN_MONETIX_DATA_URL is not set"},
		{"no secret", whole(map[string]string{"TIYN_MONETIX_DATA_SECRET": ""}), "TIYN_MONETIX_DATA_SECRET is not set"},
		{"plain http off loopback", whole(map[string]string{"TIYN_MONETIX_DATA_URL": "http://data.example.com"}), "must be https"},
		{"a timeout of two hours", whole(map[string]string{"TIYN_MONETIX_DATA_TIMEOUT": "2h"}), "TIYN_MONETIX_DATA_TIMEOUT"},
		{"a bad mapping", whole(map[string]string{"TIYN_MONETIX_DATA_MAPPING": "amount=a b"}), "TIYN_MONETIX_DATA_MAPPING"},
		{"an unknown mapping key", whole(map[string]string{"TIYN_MONETIX_DATA_MAPPING": "sum=x"}), "not a key"},
		{"both forms of the token", whole(map[string]string{"TIYN_MONETIX_DATA_TOKEN_FILE": twoLines}), "both set"},
		{"a token file of two lines", whole(map[string]string{"TIYN_MONETIX_DATA_TOKEN": "", "TIYN_MONETIX_DATA_TOKEN_FILE": twoLines}), "more than one line"},
		{"a token with a space", whole(map[string]string{"TIYN_MONETIX_DATA_TOKEN": "secret token value"}), "TIYN_MONETIX_DATA_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := load(t, tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
			for _, secret := range []string{testDataSecret, "secret token value", "second"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("the error shows a secret: %v", err)
				}
			}
		})
	}
}

// TestDataSettingsInREADME: the settings table names every Data API
// setting and prints the default mapping as the code has it.
func TestDataSettingsInREADME(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, s := range dataSettingsTable {
		name := strings.TrimSuffix(s.Env, "_FILE")
		if !strings.Contains(readme, "| `"+name+"`") {
			t.Errorf("README's settings table lacks %s", name)
		}
	}
	if !strings.Contains(readme, "`"+monetix.DefaultDataMapping().String()+"`") {
		t.Errorf("README does not print the default mapping %q", monetix.DefaultDataMapping())
	}
}
