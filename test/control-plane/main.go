// Command kcp is a multi-call binary for the ha-signer test control plane:
//
//	kcp etcd --data-dir DIR --listen-client-url URL --listen-peer-url URL
//	kcp apiserver [kube-apiserver flags]
//	kcp controller-manager [kube-controller-manager flags]
//	kcp kubectl [kubectl args]     (also when invoked through a symlink named kubectl)
//	kcp version
//
// Each component runs in its own process so the test harness can start, stop and kill them independently.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	_ "time/tzdata" // for CronJob time zone support, as the upstream mains do

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/component-base/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func usage() {
	fmt.Fprintf(os.Stderr, "usage: kcp etcd|apiserver|controller-manager|kubectl|version [args...]\n")
	os.Exit(2)
}

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if name == "kcp" || name == "kcp.exe" {
		if len(args) == 0 {
			usage()
		}
		name = args[0]
		args = args[1:]
	}
	// cobra commands parse os.Args[1:]; present them as if the component were the program.
	os.Args = append([]string{name}, args...)
	switch name {
	case "etcd":
		os.Exit(runEtcd(args))
	case "apiserver", "kube-apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "controller-manager", "kube-controller-manager":
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	case "kubectl":
		runKubectl()
	case "version", "--version":
		fmt.Println(version.Get().GitVersion)
	default:
		usage()
	}
}
