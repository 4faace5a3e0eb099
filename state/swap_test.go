package state

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSwappedStateDirCannotRedirectWrites swaps a bottle's directory with a
// symlink to another bottle, over and over, while approvals are applied to
// the first: no write may land in the other bottle, and no temporary file
// may be left in either.
func TestSwappedStateDirCannotRedirectWrites(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir, Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	now := time.Now()
	a, err := r.Create(NewBottle{AgentName: "a"}, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Create(NewBottle{AgentName: "b"}, now)
	if err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(dir, "state")
	if err := os.Symlink(b.Identity, filepath.Join(stateDir, "swap")); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			unix.Renameat2(unix.AT_FDCWD, filepath.Join(stateDir, a.Identity),
				unix.AT_FDCWD, filepath.Join(stateDir, "swap"), unix.RENAME_EXCHANGE)
		}
	}()
	routes := []byte("routes: [from-a]\n")
	checked, err := CheckLiveConfig(LiveConfig{Routes: routes})
	if err != nil {
		t.Fatal(err)
	}
	for range 300 {
		// Refusals are expected while the name is a symlink; what
		// matters is where accepted writes land.
		r.ApplyLiveConfig(a.Identity, checked)
	}
	close(stop)
	wg.Wait()

	// Put A's directory back under its name if the last swap left it aside.
	if fi, err := os.Lstat(filepath.Join(stateDir, a.Identity)); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		unix.Renameat2(unix.AT_FDCWD, filepath.Join(stateDir, a.Identity),
			unix.AT_FDCWD, filepath.Join(stateDir, "swap"), unix.RENAME_EXCHANGE)
	}
	got, err := os.ReadFile(filepath.Join(b.Dir, LiveConfigName, RoutesName))
	if err == nil && bytes.Equal(got, routes) {
		t.Errorf("bottle %s got the routes approved for %s", b.Identity, a.Identity)
	}
	for _, bottle := range []*Bottle{a, b} {
		entries, _ := os.ReadDir(filepath.Join(bottle.Dir, LiveConfigName))
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp-") {
				t.Errorf("bottle %s: temporary file %s left behind", bottle.Identity, e.Name())
			}
		}
	}
}
