package deploy_test

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// The contract of the pods' metrics listener: JETWORKER_METRICS_ADDR
// serves /metrics, /healthz and /readyz on this port, named so in the
// container, the Services and the ServiceMonitor.
const (
	metricsPortName = "metrics"
	metricsPort     = 9090
	metricsAddrVar  = "JETWORKER_METRICS_ADDR"
)

// kedaAccountPlaceholder is the KEDA trigger's account as shipped for
// creds (operator mode) auth, where the user must put the account's public
// key.
const kedaAccountPlaceholder = "REPLACE-WITH-THE-ACCOUNT-PUBLIC-KEY"

// partOfLabel is on every object of every variant.
const partOfLabel = "app.kubernetes.io/part-of"

// k8sVariant is one kustomization the test renders, and what it must
// render.
type k8sVariant struct {
	dir            string // kustomization directory, relative to deploy/
	auth           string // how the pods sign in to NATS: "creds" or "password"
	keda           bool   // a KEDA ScaledObject scales the workers
	account        string // the KEDA trigger's account
	serviceMonitor bool   // with components/servicemonitor
}

// k8sVariants are the shipped overlays, each also with the ServiceMonitor
// component added by a kustomization the test writes.
func k8sVariants() []k8sVariant {
	shipped := []k8sVariant{
		{dir: "k8s/base", auth: "creds"},
		{dir: "k8s/keda", auth: "creds", keda: true, account: kedaAccountPlaceholder},
		{dir: "k8s/password", auth: "password"},
		{dir: "k8s/keda-password", auth: "password", keda: true, account: "$G"},
	}
	variants := slices.Clone(shipped)
	for _, v := range shipped {
		v.serviceMonitor = true
		variants = append(variants, v)
	}
	return variants
}

// k8sComponents are the kustomize Components the variants use between
// them.
func k8sComponents() []string {
	return []string{"k8s/components/keda", "k8s/components/password", "k8s/components/servicemonitor"}
}

// TestKubernetes renders every variant with kustomize's own Go API (the
// code behind "kubectl kustomize"), decodes every object strictly into its
// official Go type (a local one for KEDA's and the Prometheus Operator's
// CRDs), so an unknown or misspelled field fails, and checks the objects
// together: see checkKubernetes.
func TestKubernetes(t *testing.T) {
	t.Parallel()
	for _, v := range k8sVariants() {
		name := v.dir
		if v.serviceMonitor {
			name += "+servicemonitor"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := v.dir
			if v.serviceMonitor {
				dir = withComponent(t, v.dir, "k8s/components/servicemonitor")
			}
			checkKubernetes(t, v, renderKustomization(t, dir))
		})
	}
}

// TestKubernetesVariantsComplete checks that TestKubernetes renders every
// kustomization under k8s/ and uses every component, so a new overlay
// cannot go unchecked.
func TestKubernetesVariantsComplete(t *testing.T) {
	t.Parallel()
	found := map[string][]string{} // kind -> directories
	err := filepath.WalkDir("k8s", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "kustomization.yaml" {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var k struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal(raw, &k); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		found[k.Kind] = append(found[k.Kind], filepath.ToSlash(filepath.Dir(path)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var overlays []string
	for _, v := range k8sVariants() {
		if !slices.Contains(overlays, v.dir) {
			overlays = append(overlays, v.dir)
		}
	}
	for kind, want := range map[string][]string{"Kustomization": overlays, "Component": k8sComponents()} {
		got := slices.Sorted(slices.Values(found[kind]))
		if want := slices.Sorted(slices.Values(want)); !slices.Equal(got, want) {
			t.Errorf("%s directories under k8s/: %v; TestKubernetes renders %v", kind, got, want)
		}
	}
}

// withComponent writes a kustomization that adds a component to an
// overlay and returns its directory. Kustomize refuses absolute paths, so
// it names them relative to the new directory.
func withComponent(t *testing.T, overlay, component string) string {
	t.Helper()
	dir := t.TempDir()
	rel := func(p string) string {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := filepath.Rel(dir, abs)
		if err != nil {
			t.Fatal(err)
		}
		return filepath.ToSlash(r)
	}
	k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [%q]\ncomponents: [%q]\n", rel(overlay), rel(component))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// k8sObjects are the rendered objects of one kustomization, decoded, by
// name.
type k8sObjects struct {
	deployments     map[string]*appsv1.Deployment
	rawDeployments  map[string]map[string]any // the same, undecoded
	services        map[string]*corev1.Service
	configMaps      map[string]*corev1.ConfigMap
	secrets         map[string]*corev1.Secret
	pdbs            map[string]*policyv1.PodDisruptionBudget
	scaledObjects   map[string]*scaledObject
	serviceMonitors map[string]*serviceMonitor
	labels          map[string]map[string]string // "Kind name" -> metadata.labels of every object
}

// scaledObject has the fields of KEDA's ScaledObject (keda.sh/v1alpha1)
// that the manifests use, and only those, so that strict decoding rejects
// any other.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef struct {
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount *int32 `json:"minReplicaCount"`
		MaxReplicaCount *int32 `json:"maxReplicaCount"`
		PollingInterval *int32 `json:"pollingInterval"`
		CooldownPeriod  *int32 `json:"cooldownPeriod"`
		Triggers        []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// serviceMonitor has the fields of the Prometheus Operator's
// ServiceMonitor (monitoring.coreos.com/v1) that the manifests use.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// renderKustomization builds a kustomization directory with krusty, as
// "kubectl kustomize" does, and decodes every object strictly by its
// apiVersion and kind. An object of any other kind fails the test.
func renderKustomization(t *testing.T, dir string) *k8sObjects {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	o := &k8sObjects{
		deployments:     map[string]*appsv1.Deployment{},
		rawDeployments:  map[string]map[string]any{},
		services:        map[string]*corev1.Service{},
		configMaps:      map[string]*corev1.ConfigMap{},
		secrets:         map[string]*corev1.Secret{},
		pdbs:            map[string]*policyv1.PodDisruptionBudget{},
		scaledObjects:   map[string]*scaledObject{},
		serviceMonitors: map[string]*serviceMonitor{},
		labels:          map[string]map[string]string{},
	}
	for _, r := range m.Resources() {
		raw, err := r.MarshalJSON()
		if err != nil {
			t.Fatalf("%s: %s: %v", dir, r.CurId(), err)
		}
		apiVersion, kind, name := r.GetApiVersion(), r.GetKind(), r.GetName()
		where := fmt.Sprintf("%s: %s %s %s", dir, apiVersion, kind, name)
		o.labels[kind+" "+name] = r.GetLabels()
		var obj any
		switch apiVersion + " " + kind {
		case "apps/v1 Deployment":
			d := &appsv1.Deployment{}
			o.deployments[name], obj = d, d
			if o.rawDeployments[name], err = r.Map(); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
		case "v1 Service":
			s := &corev1.Service{}
			o.services[name], obj = s, s
		case "v1 ConfigMap":
			c := &corev1.ConfigMap{}
			o.configMaps[name], obj = c, c
		case "v1 Secret":
			s := &corev1.Secret{}
			o.secrets[name], obj = s, s
		case "policy/v1 PodDisruptionBudget":
			p := &policyv1.PodDisruptionBudget{}
			o.pdbs[name], obj = p, p
		case "keda.sh/v1alpha1 ScaledObject":
			s := &scaledObject{}
			o.scaledObjects[name], obj = s, s
		case "monitoring.coreos.com/v1 ServiceMonitor":
			s := &serviceMonitor{}
			o.serviceMonitors[name], obj = s, s
		default:
			t.Errorf("%s: a kind this test does not know; teach it the kind and what to check", where)
			continue
		}
		if err := decodeStrict(raw, obj); err != nil {
			t.Errorf("%s: %v", where, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return o
}

// decodeStrict decodes JSON as the API server's strict field validation
// does: field names are case-sensitive, and an unknown or duplicate field
// is an error.
func decodeStrict(raw []byte, v any) error {
	strict, err := sigsjson.UnmarshalStrict(raw, v, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// checkKubernetes checks the objects of one variant:
//   - each Deployment's selector matches its pods' labels, and exactly one
//     Service (ClusterIP, port metrics) and one PodDisruptionBudget select
//     those pods; no Service or PDB is left selecting nothing;
//   - pods spread over zones and nodes (ScheduleAnyway), carry the scrape
//     annotations, run as non-root with the RuntimeDefault seccomp profile;
//   - each container: a real subcommand, variables it reads (env and
//     envFrom), the metrics listener on 0.0.0.0:9090 with the dashboard off,
//     probes on the named port metrics, requests and limits, GOMEMLIMIT below
//     the memory limit, a locked-down securityContext, mounted routes that
//     load, credentials as the variant's auth says;
//   - KEDA: the ScaledObject scales the worker Deployment, which has no
//     spec.replicas at all; its trigger watches a consumer the workers use
//     and names the account the auth mode needs (never "$G" with .creds);
//   - a ServiceMonitor, with the component, scrapes every metrics Service;
//   - every object has the label app.kubernetes.io/part-of: jetworker.
func checkKubernetes(t *testing.T, v k8sVariant, o *k8sObjects) {
	t.Helper()
	consumers := map[string]bool{} // stream/durable consumers the workers use
	subs := map[string]bool{}
	podLabels := map[string]labels.Set{} // Deployment -> its pods' labels
	for _, name := range slices.Sorted(maps.Keys(o.deployments)) {
		podLabels[name] = labels.Set(o.deployments[name].Spec.Template.Labels)
	}
	scaledBy := map[string]string{} // Deployment -> ScaledObject
	for name, so := range o.scaledObjects {
		scaledBy[so.Spec.ScaleTargetRef.Name] = name
	}

	for _, name := range slices.Sorted(maps.Keys(o.deployments)) {
		d := o.deployments[name]
		where := "Deployment " + name
		pod := &d.Spec.Template.Spec

		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		switch {
		case err != nil || d.Spec.Selector == nil || sel.Empty():
			t.Errorf("%s: selector %v (%v), want labels of its pods", where, d.Spec.Selector, err)
		case !sel.Matches(podLabels[name]):
			t.Errorf("%s: selector %s does not match its pod labels %v", where, sel, podLabels[name])
		}
		for other, l := range podLabels {
			if other != name && sel != nil && sel.Matches(l) {
				t.Errorf("%s: selector %s also matches the pods of Deployment %s", where, sel, other)
			}
		}

		// Replicas: KEDA's to set, or a fixed count above the PDB's
		// minAvailable.
		spec, _ := o.rawDeployments[name]["spec"].(map[string]any)
		_, hasReplicas := spec["replicas"]
		replicas := int32(0)
		if so, ok := scaledBy[name]; ok {
			if hasReplicas {
				t.Errorf("%s: sets spec.replicas (%v) though ScaledObject %s owns the count: every apply would reset it", where, spec["replicas"], so)
			}
			replicas = ptr.Deref(o.scaledObjects[so].Spec.MinReplicaCount, 0)
		} else {
			if !hasReplicas {
				t.Errorf("%s: no spec.replicas and no ScaledObject: one replica", where)
			}
			replicas = ptr.Deref(d.Spec.Replicas, 0)
		}
		if replicas < 2 {
			t.Errorf("%s: %d replicas (minimum), want at least 2", where, replicas)
		}

		checkPodTemplate(t, where, d, podLabels[name])
		for _, c := range pod.Containers {
			sub := checkContainer(t, v, where+" container "+c.Name, pod, &c, o, consumers)
			subs[sub] = true
		}

		// Exactly one Service and one PodDisruptionBudget select these pods.
		var svcs []string
		for sname, s := range o.services {
			if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels[name]) {
				svcs = append(svcs, sname)
				checkMetricsService(t, "Service "+sname, s)
			}
		}
		if len(svcs) != 1 {
			t.Errorf("%s: Services %v select its pods, want exactly one (the metrics port)", where, svcs)
		}
		var pdbs []string
		for pname, p := range o.pdbs {
			psel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
			if err != nil || p.Spec.Selector == nil || psel.Empty() || !psel.Matches(podLabels[name]) {
				continue
			}
			pdbs = append(pdbs, pname)
			if p.Spec.MinAvailable == nil || p.Spec.MinAvailable.Type != intstr.Int || p.Spec.MinAvailable.IntVal < 1 || p.Spec.MinAvailable.IntVal >= replicas {
				t.Errorf("PodDisruptionBudget %s: minAvailable %v, want a number from 1 to below the %d replicas, or it blocks every drain", pname, p.Spec.MinAvailable, replicas)
			}
		}
		if len(pdbs) != 1 {
			t.Errorf("%s: PodDisruptionBudgets %v select its pods, want exactly one", where, pdbs)
		}
	}
	if !subs["worker"] || !subs["scheduler"] {
		t.Errorf("Deployments run %v, want worker and scheduler", slices.Sorted(maps.Keys(subs)))
	}
	for sname, s := range o.services {
		if !selectsSome(labels.SelectorFromSet(s.Spec.Selector), podLabels) || len(s.Spec.Selector) == 0 {
			t.Errorf("Service %s: selector %v selects no Deployment's pods", sname, s.Spec.Selector)
		}
	}
	for pname, p := range o.pdbs {
		psel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || psel.Empty() || !selectsSome(psel, podLabels) {
			t.Errorf("PodDisruptionBudget %s: selector %v selects no Deployment's pods", pname, p.Spec.Selector)
		}
	}

	for _, id := range slices.Sorted(maps.Keys(o.labels)) {
		if got := o.labels[id][partOfLabel]; got != "jetworker" {
			t.Errorf("%s: label %s=%q, want jetworker (kubectl get -l selects everything by it)", id, partOfLabel, got)
		}
	}

	checkScaledObjects(t, v, o, consumers)
	checkServiceMonitors(t, v, o)
}

// checkPodTemplate checks what a Deployment's pods share: topology
// spread, scrape annotations and the pod securityContext.
func checkPodTemplate(t *testing.T, where string, d *appsv1.Deployment, pods labels.Set) {
	t.Helper()
	pod := &d.Spec.Template.Spec
	spread := map[string]bool{}
	for _, tsc := range pod.TopologySpreadConstraints {
		sel, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector)
		switch {
		case tsc.WhenUnsatisfiable != corev1.ScheduleAnyway:
			t.Errorf("%s: topology spread on %s is %s, want ScheduleAnyway (never leave a pod pending for it)", where, tsc.TopologyKey, tsc.WhenUnsatisfiable)
		case err != nil || tsc.LabelSelector == nil || sel.Empty() || !sel.Matches(pods):
			t.Errorf("%s: topology spread on %s selects %v, want its own pods", where, tsc.TopologyKey, tsc.LabelSelector)
		case tsc.MaxSkew != 1:
			t.Errorf("%s: topology spread on %s has maxSkew %d, want 1", where, tsc.TopologyKey, tsc.MaxSkew)
		default:
			spread[tsc.TopologyKey] = true
		}
	}
	for _, key := range []string{corev1.LabelTopologyZone, corev1.LabelHostname} {
		if !spread[key] {
			t.Errorf("%s: pods do not spread over %s", where, key)
		}
	}

	ann := d.Spec.Template.Annotations
	for k, want := range map[string]string{
		"prometheus.io/scrape": "true",
		"prometheus.io/port":   strconv.Itoa(metricsPort),
		"prometheus.io/path":   "/metrics",
	} {
		if ann[k] != want {
			t.Errorf("%s: pod annotation %s=%q, want %q", where, k, ann[k], want)
		}
	}

	psc := pod.SecurityContext
	if psc == nil || !ptr.Deref(psc.RunAsNonRoot, false) || ptr.Deref(psc.RunAsUser, 0) == 0 {
		t.Errorf("%s: pod securityContext must set runAsNonRoot and a non-root runAsUser", where)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: want the RuntimeDefault seccomp profile", where)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s: want automountServiceAccountToken: false (jetworker never calls the Kubernetes API)", where)
	}
}

// checkContainer checks one container and returns its subcommand.
// Workers add the consumers of their routes to consumers.
func checkContainer(t *testing.T, v k8sVariant, where string, pod *corev1.PodSpec, c *corev1.Container, o *k8sObjects, consumers map[string]bool) string {
	t.Helper()
	if !strings.HasPrefix(c.Image, "jetworker") {
		t.Errorf("%s: image %q, want jetworker", where, c.Image)
		return ""
	}
	if len(c.Command) > 0 {
		t.Errorf("%s: command %q replaces the image's entrypoint; use args", where, c.Command)
	}
	env, secretEnv := containerEnv(t, where, c, o)
	checkCommand(t, where, c.Args, env)
	if len(c.Args) == 0 {
		return ""
	}
	sub := c.Args[0]

	// The metrics listener, the only HTTP surface, and the probes on it.
	if addr := env["JETWORKER_HTTP_ADDR"]; addr != "" {
		t.Errorf("%s: JETWORKER_HTTP_ADDR=%q: the dashboard stays off in the pods (probes and metrics use %s)", where, addr, metricsAddrVar)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports[metricsPortName] != metricsPort {
		t.Errorf("%s: container port %s is %d, want %d", where, metricsPortName, ports[metricsPortName], metricsPort)
	}
	host, port, err := net.SplitHostPort(env[metricsAddrVar])
	if err != nil || (host != "0.0.0.0" && host != "") || port != strconv.Itoa(metricsPort) {
		t.Errorf("%s: %s=%q, want 0.0.0.0:%d so the kubelet and Prometheus reach it", where, metricsAddrVar, env[metricsAddrVar], metricsPort)
	}
	for _, pr := range []struct {
		name, path string
		p          *corev1.Probe
	}{{"livenessProbe", "/healthz", c.LivenessProbe}, {"readinessProbe", "/readyz", c.ReadinessProbe}} {
		if pr.p == nil || pr.p.HTTPGet == nil || pr.p.HTTPGet.Path != pr.path {
			t.Errorf("%s: %s must be an httpGet of %s", where, pr.name, pr.path)
			continue
		}
		port := pr.p.HTTPGet.Port
		if _, ok := ports[port.StrVal]; port.Type != intstr.String || !ok {
			t.Errorf("%s: %s probes port %q, want a named port of the container (%v)", where, pr.name, port.String(), slices.Sorted(maps.Keys(ports)))
		} else if port.StrVal != metricsPortName {
			t.Errorf("%s: %s probes port %s, want %s", where, pr.name, port.StrVal, metricsPortName)
		}
	}

	// Resources, and a GOMEMLIMIT the Go runtime accepts, below the limit.
	res := c.Resources
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := res.Requests[r]; !ok {
			t.Errorf("%s: no %s request", where, r)
		}
		if _, ok := res.Limits[r]; !ok {
			t.Errorf("%s: no %s limit", where, r)
		}
	}
	if memLimit, ok := res.Limits[corev1.ResourceMemory]; ok {
		checkGOMEMLIMIT(t, where, env["GOMEMLIMIT"], memLimit.Value())
	}

	sc := c.SecurityContext
	switch {
	case sc == nil || !ptr.Deref(sc.ReadOnlyRootFilesystem, false):
		t.Errorf("%s: want readOnlyRootFilesystem", where)
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("%s: want allowPrivilegeEscalation: false", where)
	case sc.Privileged != nil && *sc.Privileged:
		t.Errorf("%s: privileged", where)
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("%s: want capabilities drop [ALL] and none added", where)
	case sc.RunAsNonRoot == nil && (pod.SecurityContext == nil || !ptr.Deref(pod.SecurityContext.RunAsNonRoot, false)):
		t.Errorf("%s: want runAsNonRoot", where)
	case sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot:
		t.Errorf("%s: runAsNonRoot: false", where)
	}
	grace := cmp.Or(env["JETWORKER_SHUTDOWN_GRACE"], "10s")
	if !longer(fmt.Sprintf("%ds", ptr.Deref(pod.TerminationGracePeriodSeconds, 0)), grace) {
		t.Errorf("%s: terminationGracePeriodSeconds %d must exceed JETWORKER_SHUTDOWN_GRACE %s", where, ptr.Deref(pod.TerminationGracePeriodSeconds, 0), grace)
	}

	// Mounted files: routes from a ConfigMap.
	if sub == "worker" {
		m := mountedFile(pod, c, env["JETWORKER_ROUTES"])
		cm := o.configMaps[m.configMap]
		if cm == nil || cm.Data[m.key] == "" {
			t.Errorf("%s: JETWORKER_ROUTES=%q is not a key of a mounted ConfigMap", where, env["JETWORKER_ROUTES"])
		} else {
			f := filepath.Join(t.TempDir(), "routes.yaml")
			if err := os.WriteFile(f, []byte(cm.Data[m.key]), 0o600); err != nil {
				t.Fatal(err)
			}
			checkRoutes(t, where, f)
			var rf struct {
				Routes []struct {
					Name string `json:"name"`
				} `json:"routes"`
			}
			if err := yaml.Unmarshal([]byte(cm.Data[m.key]), &rf); err != nil {
				t.Fatal(err)
			}
			for _, r := range rf.Routes {
				consumers[cmp.Or(env["JETWORKER_STREAM"], "TASKS")+"/"+cmp.Or(env["JETWORKER_DURABLE"], "worker")+"-"+r.Name] = true
			}
		}
	}

	// Credentials: what the variant's auth mode says, and only that.
	creds, password := env["JETWORKER_CREDS"] != "", env["JETWORKER_PASSWORD"] != "" || secretEnv["JETWORKER_PASSWORD"]
	switch {
	case v.auth == "creds" && (!creds || password || env["JETWORKER_USER"] != ""):
		t.Errorf("%s: auth %s: want JETWORKER_CREDS and no user or password", where, v.auth)
	case v.auth == "password" && (creds || !password || env["JETWORKER_USER"] == ""):
		t.Errorf("%s: auth %s: want JETWORKER_USER and JETWORKER_PASSWORD and no JETWORKER_CREDS", where, v.auth)
	case password && !secretEnv["JETWORKER_PASSWORD"]:
		t.Errorf("%s: JETWORKER_PASSWORD is not from a Secret", where)
	}
	if creds {
		m := mountedFile(pod, c, env["JETWORKER_CREDS"])
		s := o.secrets[m.secret]
		switch {
		case s == nil || (len(s.Data[m.key]) == 0 && s.StringData[m.key] == ""):
			t.Errorf("%s: JETWORKER_CREDS=%q is not a key of a mounted Secret", where, env["JETWORKER_CREDS"])
		case m.mode == nil:
			t.Errorf("%s: credentials Secret without defaultMode (0644), want 0400 or 0600", where)
		case *m.mode&0o077 != 0:
			t.Errorf("%s: credentials Secret defaultMode %#o, want 0400 or 0600", where, *m.mode)
		}
	}
	for _, vol := range pod.Volumes {
		if vol.Secret != nil && o.secrets[vol.Secret.SecretName] == nil {
			t.Errorf("%s: volume %s mounts Secret %q, which is not rendered", where, vol.Name, vol.Secret.SecretName)
		}
		if vol.ConfigMap != nil && o.configMaps[vol.ConfigMap.Name] == nil {
			t.Errorf("%s: volume %s mounts ConfigMap %q, which is not rendered", where, vol.Name, vol.ConfigMap.Name)
		}
	}
	return sub
}

// containerEnv resolves a container's environment as the kubelet does:
// envFrom first, then env in order, with $(VAR) references to variables
// defined before, and resourceFieldRef computed from the container's
// resources. secret reports the variables whose value comes from a
// Secret.
func containerEnv(t *testing.T, where string, c *corev1.Container, o *k8sObjects) (env map[string]string, secret map[string]bool) {
	t.Helper()
	env, secret = map[string]string{}, map[string]bool{}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm, ok := o.configMaps[ef.ConfigMapRef.Name]
			if !ok {
				t.Errorf("%s: envFrom ConfigMap %q is not rendered", where, ef.ConfigMapRef.Name)
				continue
			}
			maps.Copy(env, cm.Data)
		case ef.SecretRef != nil:
			s, ok := o.secrets[ef.SecretRef.Name]
			if !ok {
				t.Errorf("%s: envFrom Secret %q is not rendered", where, ef.SecretRef.Name)
				continue
			}
			for k, v := range s.Data {
				env[k], secret[k] = string(v), true
			}
			for k, v := range s.StringData {
				env[k], secret[k] = v, true
			}
		}
	}
	for _, e := range c.Env {
		vf := e.ValueFrom
		switch {
		case vf == nil:
			env[e.Name] = expandEnv(e.Value, env)
		case vf.SecretKeyRef != nil:
			s, ok := o.secrets[vf.SecretKeyRef.Name]
			switch {
			case !ok:
				t.Errorf("%s: %s from Secret %q, which is not rendered", where, e.Name, vf.SecretKeyRef.Name)
			case s.StringData[vf.SecretKeyRef.Key] != "":
				env[e.Name] = s.StringData[vf.SecretKeyRef.Key]
			case len(s.Data[vf.SecretKeyRef.Key]) > 0:
				env[e.Name] = string(s.Data[vf.SecretKeyRef.Key])
			default:
				t.Errorf("%s: %s from Secret %s key %q, which it does not have", where, e.Name, vf.SecretKeyRef.Name, vf.SecretKeyRef.Key)
			}
			secret[e.Name] = true
		case vf.ConfigMapKeyRef != nil:
			cm, ok := o.configMaps[vf.ConfigMapKeyRef.Name]
			if v, has := cm.Data[vf.ConfigMapKeyRef.Key]; !ok || !has {
				t.Errorf("%s: %s from ConfigMap %s key %q, which is not rendered", where, e.Name, vf.ConfigMapKeyRef.Name, vf.ConfigMapKeyRef.Key)
			} else {
				env[e.Name] = v
			}
		case vf.ResourceFieldRef != nil:
			ref := vf.ResourceFieldRef
			if ref.ContainerName != "" && ref.ContainerName != c.Name {
				t.Errorf("%s: %s from the resources of container %q", where, e.Name, ref.ContainerName)
				continue
			}
			v, err := resourceFieldValue(c.Resources, ref)
			if err != nil {
				t.Errorf("%s: %s: %v", where, e.Name, err)
				continue
			}
			env[e.Name] = v
		default:
			env[e.Name] = "" // a fieldRef: known only in the cluster
		}
	}
	return env, secret
}

var envReference = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)

// expandEnv replaces the kubelet's $(VAR) references to variables of env;
// it leaves others as they are, as the kubelet does.
func expandEnv(s string, env map[string]string) string {
	return envReference.ReplaceAllStringFunc(s, func(ref string) string {
		if v, ok := env[envReference.FindStringSubmatch(ref)[1]]; ok {
			return v
		}
		return ref
	})
}

// resourceFieldValue is what the kubelet puts in a variable with a
// resourceFieldRef: the resource divided by the divisor, rounded up.
func resourceFieldValue(res corev1.ResourceRequirements, ref *corev1.ResourceFieldSelector) (string, error) {
	kind, name, ok := strings.Cut(ref.Resource, ".")
	var q resource.Quantity
	switch {
	case ok && kind == "limits":
		q, ok = res.Limits[corev1.ResourceName(name)]
	case ok && kind == "requests":
		q, ok = res.Requests[corev1.ResourceName(name)]
	default:
		return "", fmt.Errorf("resourceFieldRef %q", ref.Resource)
	}
	if !ok {
		return "", fmt.Errorf("resourceFieldRef %s: the container sets none (the node's allocatable would be used)", ref.Resource)
	}
	div := ref.Divisor
	if div.IsZero() {
		div = resource.MustParse("1")
	}
	if name == "cpu" {
		return strconv.FormatInt((q.MilliValue()+div.MilliValue()-1)/div.MilliValue(), 10), nil
	}
	return strconv.FormatInt((q.Value()+div.Value()-1)/div.Value(), 10), nil
}

// checkGOMEMLIMIT checks that GOMEMLIMIT is set below the container's
// memory limit (and not so far below that the heap gets only a fraction),
// and that the Go runtime accepts it: it refuses to start otherwise.
func checkGOMEMLIMIT(t *testing.T, where, v string, limit int64) {
	t.Helper()
	n, ok := parseByteCount(v)
	switch {
	case !ok:
		t.Errorf("%s: GOMEMLIMIT=%q, want bytes (with an optional B, KiB, MiB, GiB or TiB) below limits.memory %d", where, v, limit)
		return
	case n >= limit:
		t.Errorf("%s: GOMEMLIMIT=%q (%d bytes) is not below limits.memory (%d bytes): the kernel would kill the pod before the runtime collects harder", where, v, n, limit)
	case n < limit*8/10:
		t.Errorf("%s: GOMEMLIMIT=%q (%d bytes) is under 80%% of limits.memory (%d bytes)", where, v, n, limit)
	}
	cmd := exec.Command(jetworkerBin, "help")
	cmd.Env = []string{"GOMEMLIMIT=" + v}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: jetworker help with GOMEMLIMIT=%s: %v\n%s", where, v, err, firstLines(out, 5))
	}
}

// parseByteCount parses GOMEMLIMIT as the Go runtime does: a number of
// bytes with an optional B, KiB, MiB, GiB or TiB.
func parseByteCount(s string) (int64, bool) {
	shift := 0
	for _, u := range []struct {
		suffix string
		shift  int
	}{{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}, {"B", 0}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, shift = n, u.shift
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || s == "" || s[0] == '+' || n > (1<<63-1)>>shift {
		return 0, false
	}
	return n << shift, true
}

// mounted is where a file of a container comes from.
type mounted struct {
	configMap string // the ConfigMap's name
	secret    string // the Secret's name
	mode      *int32 // the Secret volume's defaultMode
	key       string
}

// mountedFile finds the ConfigMap or Secret volume that holds a path of
// the container.
func mountedFile(pod *corev1.PodSpec, c *corev1.Container, path string) mounted {
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok || path == "" {
			continue
		}
		for _, v := range pod.Volumes {
			switch {
			case v.Name != m.Name:
			case v.ConfigMap != nil:
				return mounted{configMap: v.ConfigMap.Name, key: rel}
			case v.Secret != nil:
				return mounted{secret: v.Secret.SecretName, mode: v.Secret.DefaultMode, key: rel}
			}
		}
	}
	return mounted{}
}

// checkMetricsService checks a Service that selects a Deployment's pods:
// a ClusterIP Service with the port metrics on the container port metrics.
func checkMetricsService(t *testing.T, where string, s *corev1.Service) {
	t.Helper()
	if s.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("%s: type %q, want ClusterIP", where, s.Spec.Type)
	}
	i := slices.IndexFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == metricsPortName })
	if i < 0 {
		t.Errorf("%s: no port named %s", where, metricsPortName)
		return
	}
	p := s.Spec.Ports[i]
	if p.Port != metricsPort || p.TargetPort != intstr.FromString(metricsPortName) {
		t.Errorf("%s: port %s is %d -> %s, want %d -> the container port %s", where, p.Name, p.Port, p.TargetPort.String(), metricsPort, metricsPortName)
	}
}

// checkScaledObjects checks the KEDA ScaledObjects: only with KEDA, each
// scaling a worker Deployment on the lag of a consumer the workers use,
// with the trigger account the auth mode needs.
func checkScaledObjects(t *testing.T, v k8sVariant, o *k8sObjects, consumers map[string]bool) {
	t.Helper()
	// The trigger metadata KEDA's nats-jetstream scaler reads.
	natsJetStreamMetadata := []string{"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold", "activationLagThreshold", "useHttps"}
	if v.keda != (len(o.scaledObjects) > 0) {
		t.Errorf("%d ScaledObjects, want KEDA %v", len(o.scaledObjects), v.keda)
	}
	for _, name := range slices.Sorted(maps.Keys(o.scaledObjects)) {
		so := o.scaledObjects[name]
		where := "ScaledObject " + name
		target := o.deployments[so.Spec.ScaleTargetRef.Name]
		if target == nil || len(target.Spec.Template.Spec.Containers) == 0 || !slices.Equal(target.Spec.Template.Spec.Containers[0].Args, []string{"worker"}) {
			t.Errorf("%s scales %q, want a worker Deployment", where, so.Spec.ScaleTargetRef.Name)
		}
		if lo, hi := ptr.Deref(so.Spec.MinReplicaCount, 0), ptr.Deref(so.Spec.MaxReplicaCount, 0); hi < lo {
			t.Errorf("%s: maxReplicaCount %d below minReplicaCount %d", where, hi, lo)
		}
		if len(so.Spec.Triggers) == 0 {
			t.Errorf("%s: no triggers", where)
		}
		for _, tr := range so.Spec.Triggers {
			if tr.Type != "nats-jetstream" {
				t.Errorf("%s: trigger %q, want nats-jetstream", where, tr.Type)
				continue
			}
			for k := range tr.Metadata {
				if !slices.Contains(natsJetStreamMetadata, k) {
					t.Errorf("%s: trigger metadata %q, which the nats-jetstream scaler does not read (it reads %v)", where, k, natsJetStreamMetadata)
				}
			}
			c := tr.Metadata["stream"] + "/" + tr.Metadata["consumer"]
			if !consumers[c] {
				t.Errorf("%s watches consumer %s; the workers use %v", where, c, slices.Sorted(maps.Keys(consumers)))
			}
			if tr.Metadata["natsServerMonitoringEndpoint"] == "" || tr.Metadata["lagThreshold"] == "" {
				t.Errorf("%s: want natsServerMonitoringEndpoint and lagThreshold", where)
			}
			account := tr.Metadata["account"]
			if account != v.account {
				t.Errorf("%s: account %q, want %q", where, account, v.account)
			}
			switch v.auth {
			case "creds":
				// Operator mode: the server knows accounts by public key.
				if account == "$G" || (account != kedaAccountPlaceholder && !nkeys.IsValidPublicAccountKey(account)) {
					t.Errorf("%s: account %q with JWT .creds auth, want the account's public key (or the placeholder %s)", where, account, kedaAccountPlaceholder)
				}
			case "password":
				if account != "$G" {
					t.Errorf("%s: account %q with a server without accounts, want $G", where, account)
				}
			}
		}
	}
}

// checkServiceMonitors checks the ServiceMonitor: only with the
// component, selecting every metrics Service on its metrics port.
func checkServiceMonitors(t *testing.T, v k8sVariant, o *k8sObjects) {
	t.Helper()
	if v.serviceMonitor != (len(o.serviceMonitors) > 0) {
		t.Errorf("%d ServiceMonitors, want one %v", len(o.serviceMonitors), v.serviceMonitor)
	}
	for _, name := range slices.Sorted(maps.Keys(o.serviceMonitors)) {
		sm := o.serviceMonitors[name]
		where := "ServiceMonitor " + name
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Errorf("%s: selector %v (%v), want the jetworker Services", where, sm.Spec.Selector, err)
			continue
		}
		if len(sm.Spec.Endpoints) == 0 {
			t.Errorf("%s: no endpoints", where)
		}
		for _, ep := range sm.Spec.Endpoints {
			if ep.Port != metricsPortName || ep.Path != "/metrics" {
				t.Errorf("%s: endpoint port %q path %q, want %s and /metrics", where, ep.Port, ep.Path, metricsPortName)
			}
		}
		for _, sname := range slices.Sorted(maps.Keys(o.services)) {
			if !sel.Matches(labels.Set(o.services[sname].Labels)) {
				t.Errorf("%s: selector %s does not select Service %s (labels %v)", where, sel, sname, o.services[sname].Labels)
			}
		}
	}
}

// selectsSome reports whether sel matches the pods of some Deployment.
func selectsSome(sel labels.Selector, pods map[string]labels.Set) bool {
	for _, l := range pods {
		if sel.Matches(l) {
			return true
		}
	}
	return false
}

func TestParseByteCount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"256000000", 256000000, true},
		{"1000B", 1000, true},
		{"230MiB", 230 << 20, true},
		{"2KiB", 2048, true},
		{"1GiB", 1 << 30, true},
		{"1TiB", 1 << 40, true},
		{"", 0, false},
		{"B", 0, false},
		{"MiB", 0, false},
		{"256Mi", 0, false},
		{"300MB", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"$(MEMORY_LIMIT_MIB)000000", 0, false},
		{"9000000TiB", 0, false},
	} {
		if got, ok := parseByteCount(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("parseByteCount(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
