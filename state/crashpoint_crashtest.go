//go:build crashtest

package state

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// crashAt is read once from BOTTLE_HOOK_CRASH_AT, "POINT" or "POINT:N": the
// process kills itself with SIGKILL the N-th time (default first) it
// reaches POINT, as a power cut or an OOM kill would stop it.
var crashAt = sync.OnceValues(func() (string, int) {
	name, n, _ := strings.Cut(os.Getenv("BOTTLE_HOOK_CRASH_AT"), ":")
	count, err := strconv.Atoi(n)
	if err != nil || count < 1 {
		count = 1
	}
	return name, count
})

var (
	crashMu   sync.Mutex
	crashSeen = map[string]int{}
)

func crashPoint(name string) {
	want, n := crashAt()
	if name != want {
		return
	}
	crashMu.Lock()
	crashSeen[name]++
	hit := crashSeen[name] == n
	crashMu.Unlock()
	if hit {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
