package audit

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// TestJournal writes Spine calls to the journal beside a store's chains,
// verifies the chain, and edits one entry: Verify names it.
func TestJournal(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Sync: SyncBatch})
	if err != nil {
		t.Fatal(err)
	}
	j, err := s.OpenJournal(Options{Sync: SyncBatch})
	if err != nil {
		t.Fatal(err)
	}
	type call struct {
		Time    time.Time `json:"time"`
		Service string    `json:"service"`
		Filter  string    `json:"filter"`
	}
	for i := range 5 {
		if err := j.Queue(call{time.Now(), "ldap", strings.Repeat("(objectClass=nhsAs)", i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Queue([]int{1}); err == nil {
		t.Error("a JSON array was queued")
	}
	if err := j.Queue(struct{ X string }{"no time"}); err == nil {
		t.Error("an entry without a time was queued")
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Queue(call{Time: time.Now()}); err != ErrClosed {
		t.Errorf("queue after close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := ChainFiles(dir, SpineChain)
	if err != nil || len(files) != 1 {
		t.Fatalf("journal files %v %v", files, err)
	}
	rep, err := Verify(files...)
	if err != nil || rep.First != nil || rep.Records != 5 || !rep.Anchored {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	data, _ := os.ReadFile(files[0])
	if !bytes.Contains(data, []byte(`"service":"ldap"`)) {
		t.Fatalf("journal content: %s", data)
	}
	data = bytes.Replace(data, []byte(`(objectClass=nhsAs)(objectClass=nhsAs)"`), []byte(`(objectClass=nhsMhs)(objectClass=nhsAs)"`), 1)
	if err := os.WriteFile(files[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err = Verify(files...)
	if err != nil || rep.First == nil || rep.First.Seq != 2 || rep.First.Kind != KindEdited {
		t.Fatalf("edited entry 2: %+v %v", rep.First, err)
	}

	// Reopened, the journal continues its chain.
	s, err = Open(t.TempDir(), Options{Sync: SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.OpenJournal(Options{Sync: "sometimes"}); err == nil {
		t.Error("a bad sync mode was accepted")
	}
}
