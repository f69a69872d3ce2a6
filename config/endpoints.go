// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package config

import (
	"maps"
	"slices"
	"strings"
)

// endpoints are the ModelArts and IAM endpoints of one region.
type endpoints struct{ modelArts, iam string }

// otcRegions are the Open Telekom Cloud regions with known endpoints. Swiss Cloud
// (eu-ch2) has its own domain and its IAM is "iam-pub". Other regions need both
// endpoints set in the configuration.
var otcRegions = map[string]endpoints{
	"eu-de":  {"https://modelarts.eu-de.otc.t-systems.com", "https://iam.eu-de.otc.t-systems.com"},
	"eu-nl":  {"https://modelarts.eu-nl.otc.t-systems.com", "https://iam.eu-nl.otc.t-systems.com"},
	"eu-ch2": {"https://modelarts.eu-ch2.sc.otc.t-systems.com", "https://iam-pub.eu-ch2.sc.otc.t-systems.com"},
}

// huaweiModelArts are the Huawei Cloud regions whose ModelArts endpoint is not
// https://modelarts.{region}.myhuaweicloud.com, from huaweicloud-sdk-python-v3
// huaweicloud-sdk-modelarts/huaweicloudsdkmodelarts/v1/region/modelarts_region.py
// (commit fa0251239c0dd7a6eecae9eb592441e2e304eafc; its 21 other regions follow the
// pattern). That file is a snapshot: regions missing here, including newer ones,
// get the pattern. IAM has no exceptions: every region of
// huaweicloud-sdk-iam/huaweicloudsdkiam/v3/region/iam_region.py is
// https://iam.{region}.myhuaweicloud.com.
var huaweiModelArts = map[string]string{
	"ap-southeast-1": "https://modelarts.ap-southeast-1.myhuaweicloud.cn",
}

// defaultEndpoints returns the endpoints of a region of a cloud; ok is false for
// an Open Telekom Cloud region not in otcRegions.
func defaultEndpoints(cloud, region string) (e endpoints, ok bool) {
	if cloud == cloudOTC {
		e, ok = otcRegions[region]
		return e, ok
	}
	e.modelArts = huaweiModelArts[region]
	if e.modelArts == "" {
		e.modelArts = "https://modelarts." + region + ".myhuaweicloud.com"
	}
	e.iam = "https://iam." + region + ".myhuaweicloud.com"
	return e, true
}

// knownOTCRegions lists otcRegions' regions for messages.
func knownOTCRegions() string {
	return strings.Join(slices.Sorted(maps.Keys(otcRegions)), ", ")
}
