package stave_test

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

func TestQuickstartPrintsOK(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", "./cmd/quickstart", "-bootstrap", shared.addr)
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if exit, ok := err.(*exec.ExitError); ok {
			stderr = string(exit.Stderr)
		}
		t.Fatalf("quickstart: %v\n%s%s", err, out, stderr)
	}
	if string(out) != "quickstart ok 100\n" {
		t.Fatalf("quickstart printed %q", out)
	}
}
