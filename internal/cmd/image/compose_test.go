package main

// The compose recipe of docs/ci-recipes.md ("docker compose with the
// statepack image"), run as written as far as statepack can tell, without
// Docker: its `<!-- compose-image: NAME -->` blocks are a compose file and
// the lines run with it. A small compose of this test reads the file and
// carries out each line: statepack services run the image's entrypoint
// chrooted into its extracted file system (one root per machine, named
// volumes being the directories they mount), as the service's user, with
// its environment interpolated from the host's, against MinIO; LocalStack
// is a stand-in that writes a LocalStack-like state into its volume when
// asked to save and when it stops, as LocalStack does. Then it checks that
// every LocalStack start found the state the team pushed last.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/statepack/statepack/internal/datagen"
	"github.com/statepack/statepack/internal/miniotest"
	"github.com/statepack/statepack/internal/treetest"
)

// composeRecipe is the recipe's blocks, by marker name.
type composeRecipe struct {
	file                      string // docker-compose.yml
	load, firstTime, everyDay string // the lines run with it
	state                     string // the state the services pull and push
}

// readComposeRecipe reads the marked blocks of docs/ci-recipes.md.
func readComposeRecipe(t *testing.T) composeRecipe {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "ci-recipes.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	marker := regexp.MustCompile(`^<!-- compose-image: ([a-z-]+) -->$`)
	blocks := map[string]string{}
	for i := 0; i < len(lines); i++ {
		m := marker.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			continue
		}
		if i+1 >= len(lines) || !strings.HasPrefix(strings.TrimSpace(lines[i+1]), "```") {
			t.Fatalf("docs/ci-recipes.md: <!-- compose-image: %s --> must be right before a fenced block", m[1])
		}
		var body []string
		for i += 2; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, lines[i])
		}
		blocks[m[1]] = strings.Join(body, "\n") + "\n"
	}
	r := composeRecipe{file: blocks["compose-file"], load: blocks["load"], firstTime: blocks["first-time"], everyDay: blocks["every-day"]}
	if r.file == "" || r.load == "" || r.firstTime == "" || r.everyDay == "" {
		t.Fatalf("docs/ci-recipes.md: want the compose-image blocks compose-file, load, first-time and every-day; found %v", slices.Sorted(maps.Keys(blocks)))
	}
	return r
}

// composeService is what the test's compose reads of a service.
type composeService struct {
	Image       string                       `yaml:"image"`
	User        string                       `yaml:"user"`
	Command     []string                     `yaml:"command"`
	Environment yaml.Node                    `yaml:"environment"` // a map, or a list of K=V
	Volumes     []string                     `yaml:"volumes"`
	Profiles    []string                     `yaml:"profiles"`
	DependsOn   map[string]composeDependency `yaml:"depends_on"`
}

type composeDependency struct {
	Condition string `yaml:"condition"`
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate substitutes ${VAR}, ${VAR:-default} and ${VAR:?message}
// from env, as compose does before reading the file.
func interpolate(t *testing.T, text string, env map[string]string) string {
	t.Helper()
	return interpolation.ReplaceAllStringFunc(text, func(m string) string {
		sub := interpolation.FindStringSubmatch(m)
		v, ok := env[sub[1]]
		switch sub[2] {
		case ":-":
			if v == "" {
				return sub[3]
			}
		case "-":
			if !ok {
				return sub[3]
			}
		case ":?", "?":
			if v == "" && (sub[2] == ":?" || !ok) {
				t.Fatalf("docker compose would refuse the file: %s is not set (%s)", sub[1], sub[3])
			}
		}
		return v
	})
}

// environment reads a service's environment, a map or a list of K=V.
func (s composeService) environment(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	switch s.Environment.Kind {
	case 0:
	case yaml.MappingNode:
		var m map[string]string
		if err := s.Environment.Decode(&m); err != nil {
			t.Fatalf("environment: %v", err)
		}
		env = m
	case yaml.SequenceNode:
		var l []string
		if err := s.Environment.Decode(&l); err != nil {
			t.Fatalf("environment: %v", err)
		}
		for _, kv := range l {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	default:
		t.Fatalf("environment: want a map or a list")
	}
	return env
}

// TestComposeRecipe runs the compose recipe on two machines sharing a
// bucket: the first seeds it (first-time), then each runs its every-day
// lines, and every LocalStack start must find what was pushed last.
func TestComposeRecipe(t *testing.T) {
	needRoot(t)
	recipe := readComposeRecipe(t)
	b := buildTestImage(t)
	s3 := miniotest.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bucket := s3.NewBucket(ctx, t)
	hostEnv := map[string]string{
		"STATEPACK_REMOTE":      "s3://" + bucket + "/compose-image",
		"AWS_ACCESS_KEY_ID":     s3.AccessKey,
		"AWS_SECRET_ACCESS_KEY": s3.SecretKey,
		"AWS_ENDPOINT_URL":      s3.Endpoint,
		"LOCALSTACK_AUTH_TOKEN": "ls-test-token",
	}
	if s3.Region != "" {
		hostEnv["AWS_REGION"] = s3.Region
	}
	file := parseCompose(t, recipe.file, hostEnv)
	recipe.state = file.checkWiring(t)

	// What the team pushed last, checked against every LocalStack start
	// and, after each run, against the bucket.
	var pushed treetest.Tree
	checkBucket := func(label string) {
		t.Helper()
		env := maps.Clone(hostEnv)
		env["HOME"], env["DATA_DIR"] = t.TempDir(), filepath.Join(t.TempDir(), "state")
		env["STATEPACK_STORE"] = filepath.Join(env["HOME"], "store")
		b.onHost(t, env, "pull", recipe.state, "--restore")
		t.Logf("%s: the bucket's %s must be what LocalStack wrote at the last save", label, recipe.state)
		treetest.AssertEqual(t, pushed, treetest.MustRead(t, env["DATA_DIR"]))
	}

	first, second := newMachine(t, b, file, 1), newMachine(t, b, file, 2)
	steps := []struct {
		label  string
		m      *machine
		blocks []string
	}{
		{"first machine, first time", first, []string{recipe.load, recipe.firstTime}},
		{"second machine, every day", second, []string{recipe.load, recipe.everyDay}},
		{"second machine, the next day", second, []string{recipe.everyDay}},
		{"first machine, every day", first, []string{recipe.everyDay}},
	}
	for _, st := range steps {
		t.Logf("--- %s", st.label)
		st.m.pushedBefore = pushed
		for _, line := range strings.Split(strings.Join(st.blocks, ""), "\n") {
			line, _, _ = strings.Cut(line, "#") // a comment, or a step done by hand
			if line = strings.TrimSpace(line); line != "" {
				st.m.do(line)
			}
		}
		if st.m.lastSave == nil {
			t.Fatalf("%s: nothing was saved", st.label)
		}
		pushed = st.m.lastSave
		checkBucket(st.label)
	}
	// The second machine's second day restored over what LocalStack wrote
	// as it stopped the day before: that was kept.
	if r := second.container.exec("0:0", nil, "log", "restore-backup"); r.code != 0 {
		t.Errorf("the changes the restore replaced were not kept under restore-backup: %s", r)
	}
}

// parsedCompose is the compose file after interpolation.
type parsedCompose struct {
	composeFile
	mounts map[string]string // named volume -> the one path every service mounts it at
}

func parseCompose(t *testing.T, text string, env map[string]string) parsedCompose {
	t.Helper()
	var f composeFile
	if err := yaml.Unmarshal([]byte(interpolate(t, text, env)), &f); err != nil {
		t.Fatalf("the compose file does not parse: %v", err)
	}
	p := parsedCompose{composeFile: f, mounts: map[string]string{}}
	for name, s := range f.Services {
		for _, v := range s.Volumes {
			vol, dst, ok := strings.Cut(v, ":")
			dst, _, _ = strings.Cut(dst, ":")
			if !ok || !path.IsAbs(dst) {
				t.Fatalf("service %s: volume %q: want NAME:/path", name, v)
			}
			if _, named := f.Volumes[vol]; !named {
				t.Fatalf("service %s: volume %q: the test's compose knows named volumes only (top-level volumes:)", name, v)
			}
			// One root per machine: a volume is the directory at its mount
			// point, so it must be mounted at the same path everywhere.
			if old, seen := p.mounts[vol]; seen && old != dst {
				t.Fatalf("volume %s is mounted at %s and at %s; the test's compose needs one path per volume", vol, old, dst)
			}
			p.mounts[vol] = dst
		}
	}
	return p
}

// isStatepack tells the image's services from LocalStack.
func (s composeService) isStatepack() bool { return s.Image == defaultRepo+":latest" }

// checkWiring checks what the recipe promises beyond the runs: the init
// service restores into LocalStack's volume, LocalStack waits for it to
// complete, the save services are left out of `up` and never pull the
// restore in, and every statepack service shares the store. It returns
// the state the init service pulls.
func (f parsedCompose) checkWiring(t *testing.T) string {
	t.Helper()
	ls, ok := f.Services["localstack"]
	if !ok || !strings.Contains(ls.Image, "localstack") {
		t.Fatal("the compose file has no localstack service")
	}
	var initName string
	for name, dep := range ls.DependsOn {
		if dep.Condition != "service_completed_successfully" {
			t.Errorf("localstack depends on %s with %q: want service_completed_successfully, so that it starts only after a restore that succeeded", name, dep.Condition)
		}
		initName = name
	}
	init, ok := f.Services[initName]
	if len(ls.DependsOn) != 1 || !ok || !init.isStatepack() {
		t.Fatalf("localstack must depend on exactly one statepack service (the restore); it depends on %v", ls.DependsOn)
	}
	if len(init.Command) < 3 || init.Command[0] != "pull" || !slices.Contains(init.Command, "--restore") {
		t.Fatalf("%s runs %q: want pull STATE --restore", initName, init.Command)
	}
	lsVolume := ""
	for _, v := range ls.Volumes {
		if vol, dst, _ := strings.Cut(v, ":"); strings.HasPrefix(dst, "/var/lib/localstack") {
			lsVolume = vol
		}
	}
	if lsVolume == "" || f.mounts[lsVolume] != "/var/lib/localstack" {
		t.Fatalf("localstack mounts no named volume at /var/lib/localstack")
	}
	if env := ls.environment(t); env["PERSISTENCE"] != "1" {
		t.Errorf("LocalStack runs without PERSISTENCE=1: it keeps no state to save")
	}
	store := ""
	for name, s := range f.Services {
		if !s.isStatepack() {
			continue
		}
		if got, want := s.environment(t)["DATA_DIR"], "/var/lib/localstack/state"; got != want {
			t.Errorf("%s: DATA_DIR is %q, want %s: LocalStack's state/ under its volume", name, got, want)
		}
		if !slices.Contains(s.Volumes, lsVolume+":/var/lib/localstack") {
			t.Errorf("%s does not mount LocalStack's volume %s", name, lsVolume)
		}
		var storeVol string
		for _, v := range s.Volumes {
			if vol, dst, _ := strings.Cut(v, ":"); dst == dataDir || dst == storeDir {
				storeVol = vol
			}
		}
		if storeVol == "" || (store != "" && storeVol != store) {
			t.Errorf("%s: the store (%s) must be on one named volume every statepack service mounts, or a restore would not know what it restored", name, storeDir)
		}
		store = storeVol
		if name == initName {
			continue
		}
		if len(s.Profiles) == 0 {
			t.Errorf("%s has no profile: `docker compose up` would run it", name)
		}
		for _, dep := range f.closure(t, name) {
			if dep == "localstack" || dep == initName {
				t.Errorf("%s depends on %s: `docker compose run %s` would restore under a running LocalStack", name, dep, name)
			}
		}
	}
	return init.Command[1]
}

// closure lists a service's dependencies, transitively, dependencies first.
func (f parsedCompose) closure(t *testing.T, name string) []string {
	t.Helper()
	var out []string
	var visit func(n string, depth int)
	visit = func(n string, depth int) {
		if depth > len(f.Services) {
			t.Fatalf("depends_on loops through %s", n)
		}
		s, ok := f.Services[n]
		if !ok {
			t.Fatalf("depends_on names %s, which is not a service", n)
		}
		for _, d := range slices.Sorted(maps.Keys(s.DependsOn)) {
			visit(d, depth+1)
			if !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
	}
	visit(name, 0)
	return out
}

// machine is one developer's machine: the image's root with the named
// volumes in it, and the test's compose state.
type machine struct {
	t          *testing.T
	file       parsedCompose
	container  container
	localstack *fakeLocalStack
	loaded     bool           // the image was loaded
	exited     map[string]int // one-shot services that ran: their exit status
	lastSave   treetest.Tree  // what LocalStack had written at the last save
	// pushedBefore is what the team pushed last when the run began: the
	// state the first LocalStack start of the run must find.
	pushedBefore treetest.Tree
}

func newMachine(t *testing.T, b builtImage, f parsedCompose, seed int64) *machine {
	t.Helper()
	root := b.extract(t)
	m := &machine{t: t, file: f, container: container{t: t, root: root, config: b.config}, exited: map[string]int{}}
	m.localstack = startFakeLocalStack(t, root, seed)
	// Docker makes a volume's mount point; one the image has keeps its mode.
	for _, dst := range f.mounts {
		if err := os.MkdirAll(filepath.Join(root, dst), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Compose's network gives every service its name; the image has no
	// /etc/hosts of its own, so the test writes the one docker would.
	hosts := fmt.Sprintf("127.0.0.1 localhost\n%s localstack\n", m.localstack.ip)
	if err := os.WriteFile(filepath.Join(root, "etc", "hosts"), []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	return m
}

// do carries out one line of the recipe.
func (m *machine) do(line string) {
	t := m.t
	t.Helper()
	t.Logf("$ %s", line)
	args := strings.Fields(line)
	switch {
	case line == "make image && docker load -i dist/statepack-image.tar":
		mk, err := os.ReadFile(filepath.Join("..", "..", "..", "Makefile"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(mk), "-o dist/statepack-image.tar") {
			t.Fatal("the recipe loads dist/statepack-image.tar, which `make image` does not write")
		}
		m.loaded = true
	case len(args) >= 3 && args[0] == "docker" && args[1] == "compose":
		if !m.loaded {
			t.Fatalf("%s: the image statepack:latest was never loaded on this machine", line)
		}
		m.compose(args[2], args[3:])
	default:
		t.Fatalf("the test's compose does not know the line %q", line)
	}
}

// compose does what docker compose SUB ARGS would.
func (m *machine) compose(sub string, args []string) {
	t := m.t
	t.Helper()
	switch sub {
	case "up":
		noDeps := false
		var targets []string
		for _, a := range args {
			switch {
			case a == "-d" || a == "--detach":
			case a == "--no-deps":
				noDeps = true
			case strings.HasPrefix(a, "-"):
				t.Fatalf("docker compose up %s: the test's compose does not know it", a)
			default:
				targets = append(targets, a)
			}
		}
		if len(targets) == 0 {
			for name, s := range m.file.Services {
				if len(s.Profiles) == 0 {
					targets = append(targets, name)
				}
			}
		}
		var order []string
		for _, name := range slices.Sorted(slices.Values(targets)) {
			if !noDeps {
				for _, d := range m.file.closure(t, name) {
					if !slices.Contains(order, d) {
						order = append(order, d)
					}
				}
			}
			if !slices.Contains(order, name) {
				order = append(order, name)
			}
		}
		for _, name := range order {
			m.start(name, nil, !noDeps)
		}
	case "run":
		if len(args) < 2 || args[0] != "--rm" {
			t.Fatalf("docker compose run %s: the test's compose knows `run --rm SERVICE [ARGS]`", strings.Join(args, " "))
		}
		name := args[1]
		for _, d := range m.file.closure(t, name) {
			m.start(d, nil, true)
		}
		m.start(name, args[2:], true)
	case "down":
		if len(args) != 0 {
			t.Fatalf("docker compose down %s: the test's compose knows plain down (volumes stay)", strings.Join(args, " "))
		}
		m.localstack.stop()
		clear(m.exited)
	default:
		t.Fatalf("docker compose %s: the test's compose knows up, run and down", sub)
	}
}

// start starts one service, after checking its dependencies' conditions
// when wait is set: LocalStack (left alone when running) or a one-shot
// statepack service, run to completion. A one-shot that failed fails the
// line, as the condition or the run's exit status would.
func (m *machine) start(name string, args []string, wait bool) {
	t := m.t
	t.Helper()
	s, ok := m.file.Services[name]
	if !ok {
		t.Fatalf("no service %s", name)
	}
	if wait {
		for dep, cond := range s.DependsOn {
			if cond.Condition == "service_completed_successfully" {
				if code, ran := m.exited[dep]; !ran || code != 0 {
					t.Fatalf("service %q didn't complete successfully (exit %d): compose does not start %s", dep, code, name)
				}
			}
		}
	}
	if !s.isStatepack() {
		if m.localstack.isRunning() {
			return
		}
		m.localstack.start(m.pushedBefore)
		return
	}
	// A one-shot that LocalStack depends on must not run under it.
	if _, feedsLocalStack := m.file.Services["localstack"].DependsOn[name]; feedsLocalStack && m.localstack.isRunning() {
		t.Fatalf("%s runs while LocalStack is running: it would restore under it", name)
	}
	cmd := s.Command
	if len(args) > 0 {
		cmd = args
	}
	saves := m.localstack.saves()
	res := m.container.exec(s.User, s.environment(t), cmd...)
	t.Logf("%s: %s", name, res)
	m.exited[name] = res.code
	if res.code != 0 {
		t.Fatalf("service %s exited %d", name, res.code)
	}
	if trees := m.localstack.saves(); len(trees) > len(saves) {
		m.lastSave = trees[len(trees)-1]
	}
}

// fakeLocalStack is LocalStack as statepack sees it: its health and state
// endpoints on a loopback address of its own, port 4566, and its state
// written into the volume's state/ when asked to save and when it stops.
type fakeLocalStack struct {
	t        *testing.T
	ip       string
	stateDir string

	mu        sync.Mutex
	seed      int64
	step      int
	running   bool
	saveTrees []treetest.Tree
}

func startFakeLocalStack(t *testing.T, root string, seed int64) *fakeLocalStack {
	t.Helper()
	f := &fakeLocalStack{t: t, stateDir: filepath.Join(root, "var", "lib", "localstack", "state"), seed: seed}
	var ln net.Listener
	var err error
	for range 20 {
		f.ip = fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), rand.IntN(256), 1+rand.IntN(250))
		if ln, err = net.Listen("tcp", f.ip+":4566"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("no loopback address for the LocalStack stand-in: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_localstack/health", func(w http.ResponseWriter, r *http.Request) {
		if !f.isRunning() {
			http.Error(w, "LocalStack is not running", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, `{"services": {"dynamodb": "running", "s3": "running", "sqs": "running"}}`)
	})
	mux.HandleFunc("POST /_localstack/state/{op}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.running || r.PathValue("op") != "save" {
			http.Error(w, "the stand-in saves, and only while running", http.StatusBadRequest)
			return
		}
		if err := f.writeState(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		tree, err := treetest.Read(f.stateDir)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		f.saveTrees = append(f.saveTrees, tree)
		enc := json.NewEncoder(w)
		for _, s := range []string{"dynamodb", "s3", "sqs"} {
			_ = enc.Encode(map[string]string{"service": s, "status": "ok"})
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return f
}

func (f *fakeLocalStack) isRunning() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running
}

func (f *fakeLocalStack) saves() []treetest.Tree {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.saveTrees)
}

// start is LocalStack starting on its volume: it must find there what the
// team pushed last (nothing on the first run), restored before it started.
// Started empty, it gets the resources the team starts from.
func (f *fakeLocalStack) start(want treetest.Tree) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := os.MkdirAll(f.stateDir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	f.t.Logf("LocalStack starts: its volume must hold what the team pushed last (%d paths)", len(want))
	treetest.AssertEqual(f.t, want, treetest.MustRead(f.t, f.stateDir))
	if len(want) == 0 {
		if _, err := datagen.Generate(f.stateDir, datagen.Options{Seed: f.seed, Size: 256 << 10}); err != nil {
			f.t.Fatal(err)
		}
	}
	f.running = true
}

// stop is LocalStack stopping: it writes its state as it goes.
func (f *fakeLocalStack) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.running {
		return
	}
	if err := f.writeState(); err != nil {
		f.t.Fatal(err)
	}
	f.running = false
}

// writeState is LocalStack writing its state: what it holds, changed one
// step further since it last wrote.
func (f *fakeLocalStack) writeState() error {
	f.step++
	_, err := datagen.Mutate(f.stateDir, f.seed, f.step)
	return err
}
