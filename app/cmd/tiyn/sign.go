package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tiyn/tiyn/adapters/monetix/signature"
)

func init() {
	registerCommand("sign", Command{
		Summary: "print the Monetix signature of a JSON body read on stdin (--explain, --verify)",
		Run:     runSign,
	})
}

// envSignSecret holds the secret key for `tiyn sign`.
const envSignSecret = "TIYN_SIGN_SECRET"

// maxSignInput bounds what `tiyn sign` reads from stdin; bodies the
// platform sends are a few kilobytes.
const maxSignInput = 1 << 20

var signSpec = cmdSpec{
	Name: "sign",
	Args: "[--secret KEY] [--explain | --verify] < body.json",
	Description: "Reads one JSON object on stdin and prints its Monetix signature: base64 of HMAC-SHA512 with the\n" +
		"project's secret key over the flattened, naturally sorted parameters (members named \"signature\" are\n" +
		"left out at every depth). The secret comes from --secret or " + envSignSecret + ".\n\n" +
		"  --explain  also print the string that is signed, to compare with the platform's when keys disagree\n" +
		"  --verify   check the body's own top-level \"signature\"; exit 1 when it is wrong\n\n" +
		"Exit status: 0 signed (or the signature verified), 1 wrong signature, 2 bad usage or malformed JSON.",
}

func runSign(_ context.Context, m *Main, args []string) error {
	fs := m.FlagSet("sign")
	secretFlag := fs.String("secret", "", "the project's secret key (or "+envSignSecret+"; a flag's value shows in the process list)")
	explain := fs.Bool("explain", false, "print the string to sign as well")
	verify := fs.Bool("verify", false, "verify the body's own signature instead of printing one")
	_, pos, err := m.LoadConfig(fs, signSpec, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("sign reads the body on stdin and takes no arguments, got %q", pos)
	}
	secret := *secretFlag
	if secret == "" {
		secret, _ = m.LookupEnv(envSignSecret)
	}
	if secret == "" {
		return usagef("no secret key: pass --secret or set %s", envSignSecret)
	}
	body, err := io.ReadAll(io.LimitReader(m.Stdin, maxSignInput+1))
	if err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	if len(body) > maxSignInput {
		return usagef("body on stdin is larger than %d bytes", maxSignInput)
	}
	doc, err := signature.Decode(body)
	if err != nil {
		return usagef("stdin is not a JSON object: %v", err)
	}
	if *explain {
		fmt.Fprintf(m.Stdout, "string to sign:\n%s\n", signature.StringToSign(doc))
	}
	key := []byte(secret)
	if !*verify {
		sig := signature.Sign(key, doc)
		if *explain {
			fmt.Fprintf(m.Stdout, "signature:\n")
		}
		fmt.Fprintln(m.Stdout, sig)
		return nil
	}
	err = signature.Verify(key, doc)
	switch {
	case err == nil:
		fmt.Fprintln(m.Stdout, "signature OK")
		return nil
	case errors.Is(err, signature.ErrInvalidSignature):
		got, _ := doc["signature"].(string)
		if strings.TrimSpace(got) == "" {
			got = "(no top-level \"signature\" string)"
		}
		fmt.Fprintf(m.Stdout, "signature WRONG\n  body has:  %s\n  key gives: %s\n", got, signature.Sign(key, doc))
		return errors.New("signature does not match the body and key")
	}
	return err
}
