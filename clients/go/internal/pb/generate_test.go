package pb

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// The committed code is what scripts/generate.sh makes from proto/stave/v1/stave.proto now
// (the protoc version line aside, so another protoc release does not count as a change).
func TestGeneratedCodeIsCurrent(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		t.Skip("protoc is not installed (apt-get install -y protobuf-compiler): the generated code is not checked")
	}
	out := t.TempDir()
	cmd := exec.Command("bash", filepath.Join("..", "..", "scripts", "generate.sh"), "--out", out)
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generate.sh: %v\n%s", err, output)
	}
	protocVersion := regexp.MustCompile(`(?m)^// .*protoc +v.*\n`)
	for _, name := range []string{"stave.pb.go", "stave_grpc.pb.go"} {
		committed, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		generated, err := os.ReadFile(filepath.Join(out, "internal", "pb", name))
		if err != nil {
			t.Fatal(err)
		}
		if string(protocVersion.ReplaceAll(committed, nil)) != string(protocVersion.ReplaceAll(generated, nil)) {
			t.Errorf("internal/pb/%s is not what scripts/generate.sh makes from the proto now: run clients/go/scripts/generate.sh", name)
		}
	}
}
