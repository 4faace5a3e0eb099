package state

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWalkLeavesOutBottlesEndedMeanwhile ends bottles between the reading
// of the names in state/ and the reading of each bottle, as a session end
// running beside a listing does: they are left out, while a directory
// that is still there without its metadata is listed as broken.
func TestWalkLeavesOutBottlesEndedMeanwhile(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir, Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var ids []string
	for _, agent := range []string{"a", "b", "c", "d"} {
		b, err := r.Create(NewBottle{AgentName: agent}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.Identity)
	}
	stateDir := filepath.Join(dir, "state")
	if err := os.Mkdir(filepath.Join(stateDir, "e-nometa"), 0o700); err != nil {
		t.Fatal(err)
	}

	var seen []string
	var broken []string
	err = r.Walk(func(e Entry) error {
		if e.Identity == ids[0] {
			// While the first is shown: one bottle is removed whole,
			// another has lost its metadata and is then removed (the
			// order of a removal), so both are gone when read.
			if err := os.RemoveAll(filepath.Join(stateDir, ids[1])); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(stateDir, ids[2], MetadataName)); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(stateDir, ids[2])); err != nil {
				t.Fatal(err)
			}
		}
		seen = append(seen, e.Identity)
		if e.Err != nil {
			broken = append(broken, e.Identity)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{ids[0], ids[3], "e-nometa"}
	if len(seen) != len(want) || seen[0] != want[0] || seen[1] != want[1] || seen[2] != want[2] {
		t.Errorf("walked %q, want %q", seen, want)
	}
	if len(broken) != 1 || broken[0] != "e-nometa" {
		t.Errorf("broken: %q, want only e-nometa", broken)
	}
}
