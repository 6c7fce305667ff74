package config

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"testing"
)

const exampleFile = "../../greypit.example.toml"

// The example file, as shipped, sets nothing.
func TestExampleIsDefaults(t *testing.T) {
	c, err := Load(exampleFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("example file differs from defaults:\n got %+v\nwant %+v", c, Default())
	}
}

var (
	// settingLine matches a commented-out "# key = value" line.
	settingLine      = regexp.MustCompile(`(?m)^# ?([a-z0-9_]+ = .*)$`)
	sectionOrSetting = regexp.MustCompile(`(?m)^\[([a-z]+)\]$|^# ?([a-z0-9_]+) = .*$`)
)

// Uncommenting every setting gives the defaults again (except the host
// name, which defaults to the machine's), and the file lists every key.
func TestExampleUncommented(t *testing.T) {
	data, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	section := ""
	for _, m := range sectionOrSetting.FindAllStringSubmatch(string(data), -1) {
		if m[1] != "" {
			section = m[1]
			continue
		}
		seen = append(seen, section+"."+m[2])
	}
	slices.Sort(seen)
	if !slices.Equal(seen, Keys()) {
		t.Errorf("example file lists keys\n%v\nwant\n%v", seen, Keys())
	}

	p := writeFile(t, settingLine.ReplaceAllString(string(data), "$1"))
	c, err := Load(p, nil)
	if err != nil {
		t.Fatalf("uncommented example: %v", err)
	}
	want := Default()
	want.SMTP.Hostname = c.SMTP.Hostname
	if !reflect.DeepEqual(c, want) {
		t.Errorf("uncommented example differs from defaults:\n got %+v\nwant %+v", c, want)
	}
}
