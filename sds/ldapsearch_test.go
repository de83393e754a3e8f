package sds

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sspemu/certs"
	"sspemu/gpconnect"
)

// ldapsearchOnce installs Debian's ldap-utils when ldapsearch is missing,
// once per test binary.
var ldapsearchOnce = sync.OnceValue(func() error {
	if _, err := exec.LookPath("ldapsearch"); err == nil {
		return nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil || os.Geteuid() != 0 {
		return errors.New("ldapsearch is missing and cannot be installed here (needs root and apt-get): install Debian's ldap-utils")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "--no-install-recommends", "ldap-utils"}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return errors.New("apt-get " + strings.Join(args, " ") + ": " + err.Error() + "\n" + string(out))
		}
	}
	_, err := exec.LookPath("ldapsearch")
	return err
})

// ldapsearch runs the real client with the dev PKI in its environment
// (no ldap.conf), unwrapped LDIF out.
func ldapsearch(t *testing.T, dir string, withCert bool, args ...string) (string, int) {
	t.Helper()
	if err := ldapsearchOnce(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ldapsearch", append([]string{"-o", "ldif-wrap=no", "-o", "nettimeout=20"}, args...)...)
	cmd.Env = append(os.Environ(), "LDAPCONF=/dev/null", "LDAPRC=/dev/null", "LDAPTLS_REQCERT=demand")
	if dir != "" {
		cmd.Env = append(cmd.Env, "LDAPTLS_CACERT="+filepath.Join(dir, certs.CAFile))
		if withCert {
			cmd.Env = append(cmd.Env, "LDAPTLS_CERT="+filepath.Join(dir, certs.ConsumerFile), "LDAPTLS_KEY="+filepath.Join(dir, certs.ConsumerKeyFile))
		}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return out.String(), exit.ExitCode()
	case err != nil:
		t.Fatalf("ldapsearch: %v", err)
	}
	return out.String(), 0
}

// TestLdapsearch runs GP Connect 1.2.7's own ldapsearch commands, spaces
// between filter items included, over ldap:// and over ldaps:// with the
// consumer's certificate.
func TestLdapsearch(t *testing.T) {
	dir := pki(t)
	reg := newRegistry(t, testConfig())
	plain := serveLDAP(t, reg, nil)
	tlsl := serveLDAP(t, reg, ldapsConfig(t, dir))
	mhsFilter := "(&(nhsidcode=A20047) (objectClass=nhsMhs) (nhsMhsSvcIA=" + gpconnect.CreateAppointment + "))"
	for _, url := range []string{"ldap://" + plain.Addr(), "ldaps://" + tlsl.Addr()} {
		t.Run(url, func(t *testing.T) {
			out, code := ldapsearch(t, dir, true, "-x", "-H", url, "-b", "ou=services, o=nhs", mhsFilter, "nhsMhsEndPoint", "nhsMhsPartyKey")
			want := "dn: uniqueIdentifier=" + MHSID(providerKey, gpconnect.CreateAppointment) + ",ou=Services,o=nhs\n" +
				"nhsMhsEndPoint: " + providerRoot + "\nnhsMhsPartyKey: " + providerKey + "\n"
			if code != 0 || !strings.Contains(out, want) || !strings.Contains(out, "result: 0 Success") || !strings.Contains(out, "# numEntries: 1") {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			out, code = ldapsearch(t, dir, true, "-x", "-LLL", "-H", url, "-b", "ou=services, o=nhs",
				"(&(nhsIDCode=A20047) (objectClass=nhsAS) (nhsMHSPartyKey="+providerKey+"))", "uniqueIdentifier")
			if want := "dn: uniqueIdentifier=918999198993,ou=Services,o=nhs\nuniqueIdentifier: 918999198993\n\n"; code != 0 || out != want {
				t.Fatalf("AS lookup: exit %d:\n%s", code, out)
			}
		})
	}
	t.Run("no client certificate", func(t *testing.T) {
		out, code := ldapsearch(t, dir, false, "-x", "-H", "ldaps://"+tlsl.Addr(), "-b", BaseDN, "(objectClass=*)")
		if code == 0 || strings.Contains(out, "dn:") {
			t.Fatalf("answered without a client certificate: exit %d\n%s", code, out)
		}
	})
	t.Run("base outside the tree", func(t *testing.T) {
		out, code := ldapsearch(t, "", false, "-x", "-H", "ldap://"+plain.Addr(), "-b", "dc=example,dc=com", "(objectClass=*)")
		if code != 32 || !strings.Contains(out, "result: 32 No such object") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
	t.Run("invalid base", func(t *testing.T) {
		out, code := ldapsearch(t, "", false, "-x", "-H", "ldap://"+plain.Addr(), "-b", "services", "(objectClass=*)")
		if code != 34 || !strings.Contains(out, "result: 34 Invalid DN syntax") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
	t.Run("bad filter", func(t *testing.T) {
		// ldapsearch refuses it before sending, as any client library does.
		out, code := ldapsearch(t, "", false, "-x", "-H", "ldap://"+plain.Addr(), "-b", BaseDN, "(nhsIDCode=A20047")
		if code == 0 || !strings.Contains(out, "Bad search filter") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
	t.Run("named bind", func(t *testing.T) {
		out, code := ldapsearch(t, "", false, "-x", "-H", "ldap://"+plain.Addr(), "-D", "uid=x,ou=people,o=nhs", "-w", "pw", "-b", BaseDN, "(objectClass=*)")
		if code != 49 || !strings.Contains(out, "Invalid credentials") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
	t.Run("ldapmodify refused", func(t *testing.T) {
		cmd := exec.Command("ldapmodify", "-x", "-H", "ldap://"+plain.Addr())
		cmd.Env = append(os.Environ(), "LDAPCONF=/dev/null", "LDAPRC=/dev/null")
		cmd.Stdin = strings.NewReader("dn: uniqueIdentifier=918999198993,ou=Services,o=nhs\nchangetype: modify\nreplace: nhsIDCode\nnhsIDCode: B82617\n")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 50 || !strings.Contains(string(out), "Insufficient access") {
			t.Fatalf("%v\n%s", err, out)
		}
	})
}
