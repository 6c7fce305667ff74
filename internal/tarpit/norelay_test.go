package tarpit

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// parsePackage parses the package's non-test files.
func parsePackage(t *testing.T) (*token.FileSet, map[string]*ast.File, map[string]string) {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	files, srcs := map[string]*ast.File{}, map[string]string{}
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		files[name], srcs[name] = f, string(src)
	}
	if len(files) == 0 {
		t.Fatal("no source files found")
	}
	return fset, files, srcs
}

// netTypes lists the exported types the standard net package declares.
func netTypes(t *testing.T) map[string]bool {
	t.Helper()
	dir := filepath.Join(runtime.GOROOT(), "src", "net")
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(names) == 0 {
		t.Skipf("no net sources in %s: %v", dir, err)
	}
	types := map[string]bool{}
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			continue
		}
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.TYPE {
				for _, sp := range g.Specs {
					if n := sp.(*ast.TypeSpec).Name.Name; ast.IsExported(n) {
						types[n] = true
					}
				}
			}
		}
	}
	if !types["Conn"] || !types["Dialer"] {
		t.Skipf("could not read the net package's types from %s", dir)
	}
	return types
}

// TestNeverRelays checks the promise of the package comment: the tarpit
// opens no connection of its own. Its sources may use net only for types,
// no dialer of any kind, and the raw socket calls only on descriptors
// handed to it.
func TestNeverRelays(t *testing.T) {
	fset, files, srcs := parsePackage(t)
	types := netTypes(t)
	denied := []string{
		"net/http", "net/smtp", "net/rpc", "os/exec", "crypto/tls", "plugin",
		"github.com/greypit/greypit/internal/handoff",
	}
	unixOK := []string{"Read", "SendmsgN", "Close", "FcntlInt", "SetNonblock",
		"EAGAIN", "EINTR", "MSG_DONTWAIT", "MSG_NOSIGNAL", "F_DUPFD_CLOEXEC",
		"SetsockoptInt", "SOL_SOCKET", "SO_SNDBUF", "SO_RCVBUF"}
	for name, f := range files {
		if strings.Contains(srcs[name], "Dial") {
			t.Errorf("%s mentions Dial", name)
		}
		local := map[string]string{} // import name -> path
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if slices.Contains(denied, path) {
				t.Errorf("%s imports %s", name, path)
			}
			if strings.HasPrefix(path, "github.com/greypit/greypit/") && path != "github.com/greypit/greypit/internal/smtp" {
				t.Errorf("%s imports %s; only internal/smtp is expected", name, path)
			}
			n := path[strings.LastIndex(path, "/")+1:]
			if imp.Name != nil {
				n = imp.Name.Name
			}
			if n == "_" || n == "." {
				t.Errorf("%s imports %s as %s", name, path, n)
			}
			local[n] = path
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s: a goroutine started; the caller runs the one scheduler", fset.Position(n.Pos()))
			case *ast.CallExpr:
				// SendmsgN(fd, p, oob, to, flags): never to an address.
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "SendmsgN" {
					if id, ok := n.Args[3].(*ast.Ident); !ok || id.Name != "nil" {
						t.Errorf("%s: SendmsgN with a destination address", name)
					}
				}
			case *ast.SelectorExpr:
				x, ok := n.X.(*ast.Ident)
				if !ok {
					return true
				}
				switch local[x.Name] {
				case "net":
					sel := n.Sel.Name
					if !types[sel] || strings.Contains(sel, "Dial") || sel == "Resolver" || sel == "ListenConfig" {
						t.Errorf("%s uses net.%s; only net types that are not dialers are allowed", name, sel)
					}
				case "golang.org/x/sys/unix":
					if !slices.Contains(unixOK, n.Sel.Name) {
						t.Errorf("%s uses unix.%s", name, n.Sel.Name)
					}
				case "syscall":
					if n.Sel.Name != "Conn" {
						t.Errorf("%s uses syscall.%s", name, n.Sel.Name)
					}
				}
			}
			return true
		})
	}
}
