// kstatus prints what Flux's health checks make of Kubernetes objects: the status that
// sigs.k8s.io/cli-utils/pkg/kstatus computes (InProgress, Current, Failed, Terminating, NotFound)
// and its message, read from a real API server the way Flux reads them. Stasis' integration tests
// use it to check that each kind says what a Flux user should see.
//
//	kstatus --kubeconfig FILE [-n NAMESPACE] RESOURCE[.GROUP] NAME   reads the object from the API server
//	kstatus -f FILE                                                 reads it as JSON from FILE (- for stdin)
//
// prints one line of JSON: {"status":"Current","message":"Resource is Ready"}.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the API server")
	namespace := flag.String("n", "", "namespace of a namespaced object")
	file := flag.String("f", "", "read the object as JSON from this file (- for stdin) instead of the API server")
	flag.Parse()
	var res result
	var err error
	switch {
	case *file != "" && flag.NArg() == 0:
		res, err = computeFile(*file)
	case *file == "" && flag.NArg() == 2:
		res, err = compute(*kubeconfig, *namespace, flag.Arg(0), flag.Arg(1))
	default:
		fmt.Fprintln(os.Stderr, "usage: kstatus --kubeconfig FILE [-n NAMESPACE] RESOURCE[.GROUP] NAME | kstatus -f FILE")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		os.Exit(1)
	}
}

func compute(kubeconfig, namespace, resourceArg, name string) (result, error) {
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return result{}, err
	}
	disco, err := discovery.NewDiscoveryClientForConfig(config)
	if err != nil {
		return result{}, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco))
	gvr, err := mapper.ResourceFor(schema.ParseGroupResource(resourceArg).WithVersion(""))
	if err != nil {
		return result{}, err
	}
	client, err := dynamic.NewForConfig(config)
	if err != nil {
		return result{}, err
	}
	obj, err := client.Resource(gvr).Namespace(namespace).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return result{Status: status.NotFoundStatus.String(), Message: "Resource not found"}, nil
	}
	if err != nil {
		return result{}, err
	}
	return computeObject(obj)
}

func computeFile(file string) (result, error) {
	in := os.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return result{}, err
		}
		defer f.Close()
		in = f
	}
	data, err := io.ReadAll(in)
	if err != nil {
		return result{}, err
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(data); err != nil {
		return result{}, err
	}
	return computeObject(obj)
}

func computeObject(obj *unstructured.Unstructured) (result, error) {
	computed, err := status.Compute(obj)
	if err != nil {
		return result{}, err
	}
	return result{Status: computed.Status.String(), Message: computed.Message}, nil
}
