package deploy_test

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

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

// k8sVariant is one kustomization the test renders, and what it must
// render.
type k8sVariant struct {
	dir  string // kustomization directory, relative to deploy/
	keda bool   // a KEDA ScaledObject scales the workers
}

// k8sVariants are the shipped overlays.
func k8sVariants() []k8sVariant {
	return []k8sVariant{
		{dir: "k8s/base"},
		{dir: "k8s/keda", keda: true},
	}
}

// k8sComponents are the kustomize Components the variants use between
// them.
func k8sComponents() []string {
	return []string{"k8s/components/keda"}
}

// TestKubernetes renders every variant with kustomize's own Go API (the
// code behind "kubectl kustomize"), decodes every object strictly into its
// official Go type (a local one for KEDA's CRD), so an unknown or
// misspelled field fails, and checks the objects together: see
// checkKubernetes.
func TestKubernetes(t *testing.T) {
	t.Parallel()
	for _, v := range k8sVariants() {
		t.Run(v.dir, func(t *testing.T) {
			t.Parallel()
			checkKubernetes(t, v, renderKustomization(t, v.dir))
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

// k8sObjects are the rendered objects of one kustomization, decoded, by
// name.
type k8sObjects struct {
	deployments   map[string]*appsv1.Deployment
	services      map[string]*corev1.Service
	configMaps    map[string]*corev1.ConfigMap
	secrets       map[string]*corev1.Secret
	pdbs          map[string]*policyv1.PodDisruptionBudget
	scaledObjects map[string]*scaledObject
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
		deployments:   map[string]*appsv1.Deployment{},
		services:      map[string]*corev1.Service{},
		configMaps:    map[string]*corev1.ConfigMap{},
		secrets:       map[string]*corev1.Secret{},
		pdbs:          map[string]*policyv1.PodDisruptionBudget{},
		scaledObjects: map[string]*scaledObject{},
	}
	for _, r := range m.Resources() {
		raw, err := r.MarshalJSON()
		if err != nil {
			t.Fatalf("%s: %s: %v", dir, r.CurId(), err)
		}
		apiVersion, kind, name := r.GetApiVersion(), r.GetKind(), r.GetName()
		where := fmt.Sprintf("%s: %s %s %s", dir, apiVersion, kind, name)
		var obj any
		switch apiVersion + " " + kind {
		case "apps/v1 Deployment":
			d := &appsv1.Deployment{}
			o.deployments[name], obj = d, d
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
//     PodDisruptionBudget selects those pods; no PDB selects nothing;
//   - pods run as non-root with the RuntimeDefault seccomp profile;
//   - each container: a real subcommand, variables it reads (env and
//     envFrom), probes on a named port of the HTTP surface, requests and
//     limits, a locked-down securityContext, mounted routes that load and
//     a credentials Secret only its user can read;
//   - KEDA: the ScaledObject scales the worker Deployment on the lag of a
//     consumer the workers use.
func checkKubernetes(t *testing.T, v k8sVariant, o *k8sObjects) {
	t.Helper()
	consumers := map[string]bool{} // stream/durable consumers the workers use
	subs := map[string]bool{}
	podLabels := map[string]labels.Set{} // Deployment -> its pods' labels
	for _, name := range slices.Sorted(maps.Keys(o.deployments)) {
		podLabels[name] = labels.Set(o.deployments[name].Spec.Template.Labels)
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

		replicas := ptr.Deref(d.Spec.Replicas, 0)
		if replicas < 2 {
			t.Errorf("%s: %d replicas, want at least 2", where, replicas)
		}

		checkPodTemplate(t, where, d)
		for _, c := range pod.Containers {
			sub := checkContainer(t, where+" container "+c.Name, pod, &c, o, consumers)
			subs[sub] = true
		}

		// Exactly one PodDisruptionBudget selects these pods.
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
	for pname, p := range o.pdbs {
		psel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || psel.Empty() || !selectsSome(psel, podLabels) {
			t.Errorf("PodDisruptionBudget %s: selector %v selects no Deployment's pods", pname, p.Spec.Selector)
		}
	}

	checkScaledObjects(t, v, o, consumers)
}

// checkPodTemplate checks what a Deployment's pods share: the pod
// securityContext.
func checkPodTemplate(t *testing.T, where string, d *appsv1.Deployment) {
	t.Helper()
	pod := &d.Spec.Template.Spec
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
func checkContainer(t *testing.T, where string, pod *corev1.PodSpec, c *corev1.Container, o *k8sObjects, consumers map[string]bool) string {
	t.Helper()
	if !strings.HasPrefix(c.Image, "jetworker") {
		t.Errorf("%s: image %q, want jetworker", where, c.Image)
		return ""
	}
	if len(c.Command) > 0 {
		t.Errorf("%s: command %q replaces the image's entrypoint; use args", where, c.Command)
	}
	env := containerEnv(t, where, c, o)
	checkCommand(t, where, c.Args, env)
	if len(c.Args) == 0 {
		return ""
	}
	sub := c.Args[0]

	// The HTTP surface and the probes on it.
	if !strings.HasSuffix(env["JETWORKER_HTTP_ADDR"], ":8080") || strings.HasPrefix(env["JETWORKER_HTTP_ADDR"], "127.") {
		t.Errorf("%s: JETWORKER_HTTP_ADDR=%q, want 0.0.0.0:8080 so the kubelet can probe it", where, env["JETWORKER_HTTP_ADDR"])
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
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
		} else if ports[port.StrVal] != 8080 {
			t.Errorf("%s: %s probes port %s (%d), want 8080", where, pr.name, port.StrVal, ports[port.StrVal])
		}
	}

	// Resources.
	res := c.Resources
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := res.Requests[r]; !ok {
			t.Errorf("%s: no %s request", where, r)
		}
		if _, ok := res.Limits[r]; !ok {
			t.Errorf("%s: no %s limit", where, r)
		}
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

	// Credentials from a Secret only the container's user can read.
	if env["JETWORKER_CREDS"] != "" {
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
// resources.
func containerEnv(t *testing.T, where string, c *corev1.Container, o *k8sObjects) map[string]string {
	t.Helper()
	env := map[string]string{}
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
				env[k] = string(v)
			}
			maps.Copy(env, s.StringData)
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
	return env
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

// checkScaledObjects checks the KEDA ScaledObjects: only with KEDA, each
// scaling a worker Deployment on the lag of a consumer the workers use.
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
