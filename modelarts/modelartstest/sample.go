// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

package modelartstest

import (
	"fmt"
	"math/rand/v2"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
)

// Ids of the images SampleImages returns; the comment after each gives its
// status, type, visibility and architecture.
const (
	// SampleIDPyTorchBuiltin is the image of the ShowImage example: ACTIVE,
	// BUILD_IN, PUBLIC, x86_64, without size.
	SampleIDPyTorchBuiltin = "278e88d1-5b71-4766-8502-b3ba72e824d9"
	// SampleIDMindSporeBuiltin: ACTIVE, BUILD_IN, PUBLIC, aarch64, with size.
	SampleIDMindSporeBuiltin = "5b0c7f3e-2a91-4d6e-8f14-9c3b6a7d2e10"
	// SampleIDTrainingActive: ACTIVE, DEDICATED, PRIVATE, x86_64, saved from a notebook.
	SampleIDTrainingActive = "a3f1c2d4-6b7e-4f80-9a1b-2c3d4e5f6071"
	// SampleIDInferenceInit: INIT, DEDICATED, PRIVATE, x86_64.
	SampleIDInferenceInit = "0e9d8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c6b"
	// SampleIDNotebookCreating: CREATING, DEDICATED, PRIVATE, x86_64.
	SampleIDNotebookCreating = "1f2e3d4c-5b6a-4798-a6b5-c4d3e2f1a0b9"
	// SampleIDCreateFailed: CREATE_FAILED, DEDICATED, PRIVATE, x86_64.
	SampleIDCreateFailed = "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d"
	// SampleIDError: ERROR, DEDICATED, PRIVATE, with the documented upper-case AARCH64.
	SampleIDError = "3c4d5e6f-7a8b-4c9d-8e0f-2a3b4c5d6e7f"
	// SampleIDDeleted: DELETED, DEDICATED, PRIVATE, x86_64.
	SampleIDDeleted = "4d5e6f7a-8b9c-4d0e-9f1a-3b4c5d6e7f80"
	// SampleIDFrozen: the undocumented status FROZEN, DEDICATED, PUBLIC, aarch64.
	SampleIDFrozen = "6e7f8091-a2b3-4c4d-8e5f-60718293a4b5"
)

// SampleIDs returns the ids of SampleImages in the same order.
func SampleIDs() []string {
	return []string{
		SampleIDPyTorchBuiltin, SampleIDMindSporeBuiltin, SampleIDTrainingActive,
		SampleIDInferenceInit, SampleIDNotebookCreating, SampleIDCreateFailed,
		SampleIDError, SampleIDDeleted, SampleIDFrozen,
	}
}

// sampleSWR is the SWR registry of the sample images.
const sampleSWR = "swr.eu-de.otc.t-systems.com"

// SampleImages returns nine fixed images modeled on the ShowImage example: at
// least one in each documented status, one in the undocumented status FROZEN,
// built-in and dedicated, public and private, x86_64 and aarch64 in the lower
// case real servers send (and one documented upper-case AARCH64), one
// built-in image without size. Sizes are in KB. Each call returns fresh copies.
func SampleImages() []modelarts.Image {
	return []modelarts.Image{
		{
			ID: SampleIDPyTorchBuiltin, Name: "pytorch1.8-cuda10.2-cudnn7-ubuntu18.04",
			Arch: "x86_64", Type: "BUILD_IN", Status: modelarts.StatusActive, ServiceType: "COMMON",
			Description: "CPU and GPU general algorithm development and training, preconfigured with AI engine PyTorch1.8",
			DevServices: []string{"NOTEBOOK", "SSH"}, ResourceCategories: []string{"GPU", "CPU"},
			SWRPath:     "swr.xxx.com/atelier/pytorch_1_8:pytorch_1.8.0-cuda_10.2-py_3.7-ubuntu_18.04-x86_64-20220926104358-041ba2e",
			Tag:         "pytorch_1.8.0-cuda_10.2-py_3.7-ubuntu_18.04-x86_64-20220926104358-041ba2e",
			WorkspaceID: "0", CreateAt: 1638234504492, UpdateAt: 1638234504492,
		},
		{
			ID: SampleIDMindSporeBuiltin, Name: "mindspore1.7.0-cann5.1.0-py3.7-euler2.8.3",
			Arch: "aarch64", Type: "BUILD_IN", Visibility: "PUBLIC", Status: modelarts.StatusActive,
			ServiceType: "COMMON", Origin: "CUSTOMIZE", Namespace: "atelier",
			Description: "Ascend development and training, preconfigured with AI engine MindSpore 1.7.0",
			DevServices: []string{"NOTEBOOK", "SSH"}, ResourceCategories: []string{"ASCEND"},
			SupportResCategories: []string{"ASCEND"}, Size: kb(4718592),
			SWRPath:     sampleSWR + "/atelier/mindspore_1_7_0:mindspore_1.7.0-cann_5.1.0-py_3.7-euler_2.8.3-aarch64-d910-20220715093657-9446c6a",
			Tag:         "mindspore_1.7.0-cann_5.1.0-py_3.7-euler_2.8.3-aarch64-d910-20220715093657-9446c6a",
			WorkspaceID: "0", CreateAt: 1657878417000, UpdateAt: 1666601234567,
		},
		dedicated(SampleIDTrainingActive, "team-vision-train", "resnet50-finetune", "v1.4.2",
			modelarts.StatusActive, "x86_64", "TRAIN", 1697023380123, kb(3297005), func(img *modelarts.Image) {
				img.Origin = "IMAGE_SAVE"
				img.Description = "ResNet-50 fine-tuning environment saved from notebook nb-vision-01"
				img.ResourceCategories = []string{"GPU"}
			}),
		dedicated(SampleIDInferenceInit, "team-vision-serve", "resnet50-serving", "v0.9.0",
			modelarts.StatusInit, "x86_64", "INFERENCE", 1708430000456, nil, nil),
		dedicated(SampleIDNotebookCreating, "team-nlp", "bert-base-notebook", "2024.03.1",
			modelarts.StatusCreating, "x86_64", "DEV", 1710499800789, nil, func(img *modelarts.Image) {
				img.Origin = "IMAGE_SAVE"
				img.StatusMessage = "Saving the image: pushing layer 3 of 7"
			}),
		dedicated(SampleIDCreateFailed, "team-nlp", "llama-finetune", "v0.1.0",
			modelarts.StatusCreateFailed, "x86_64", "TRAIN", 1712050200012, nil, func(img *modelarts.Image) {
				img.Origin = "IMAGE_SAVE"
				img.StatusMessage = "Failed to save the image: the image exceeds the 35 GB limit of a notebook"
			}),
		dedicated(SampleIDError, "team-edge", "yolov5-ascend", "v2.0.0",
			modelarts.StatusError, "AARCH64", "INFERENCE", 1713262860345, kb(2097152), func(img *modelarts.Image) {
				img.StatusMessage = "The image could not be pulled from SWR"
			}),
		dedicated(SampleIDDeleted, "team-vision-train", "resnet50-finetune", "v1.3.0",
			modelarts.StatusDeleted, "x86_64", "TRAIN", 1694437200678, kb(3145728), nil),
		dedicated(SampleIDFrozen, "team-edge", "tinyml-toolkit", "v0.3.1",
			"FROZEN", "aarch64", "COMMON", 1715672400901, kb(524288), func(img *modelarts.Image) {
				img.Visibility = "PUBLIC"
				img.Description = "Frozen by the platform; the status is not in the API reference"
			}),
	}
}

// dedicated builds a saved (DEDICATED, PRIVATE) image; adjust may change it.
func dedicated(id, namespace, name, tag, status, arch, serviceType string, createAt int64,
	size *int64, adjust func(*modelarts.Image),
) modelarts.Image {
	img := modelarts.Image{
		ID: id, Name: name, Tag: tag, Namespace: namespace,
		Arch: arch, Type: "DEDICATED", Visibility: "PRIVATE", Status: status,
		ServiceType: serviceType, Origin: "CUSTOMIZE",
		DevServices: []string{"NOTEBOOK", "SSH"}, ResourceCategories: []string{"CPU", "GPU"},
		SWRPath: fmt.Sprintf("%s/%s/%s:%s", sampleSWR, namespace, name, tag),
		Size:    size, WorkspaceID: "0",
		CreateAt: createAt, UpdateAt: createAt + 3_600_000,
	}
	if adjust != nil {
		adjust(&img)
	}
	return img
}

func kb(n int64) *int64 { return &n }

// generatedStatuses weighs the statuses of GenerateImages: mostly ACTIVE, a
// few of every other documented status and of the undocumented FROZEN.
var generatedStatuses = []string{
	modelarts.StatusActive, modelarts.StatusActive, modelarts.StatusActive, modelarts.StatusActive,
	modelarts.StatusActive, modelarts.StatusActive, modelarts.StatusActive, modelarts.StatusActive,
	modelarts.StatusActive, modelarts.StatusActive, modelarts.StatusActive, modelarts.StatusActive,
	modelarts.StatusInit, modelarts.StatusCreating, modelarts.StatusCreateFailed,
	modelarts.StatusError, modelarts.StatusDeleted, "FROZEN",
}

var (
	generatedNamespaces = []string{"team-vision", "team-nlp", "team-speech", "team-edge", "team-recsys"}
	generatedModels     = []string{"resnet50", "bert-base", "yolov5", "whisper-small", "llama-7b", "wide-deep"}
	generatedServices   = []string{"COMMON", "TRAIN", "INFERENCE", "DEV"}
)

// GenerateImages returns n images for scale tests, the same for the same n and
// seed. Ids are UUIDs whose last group is the index, so they are unique; names
// are unique too. About one in twenty is a built-in image without size.
func GenerateImages(n int, seed int64) []modelarts.Image {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6d6f64656c617274))
	images := make([]modelarts.Image, max(n, 0))
	const base = 1_700_000_000_000 // 2023-11-14, epoch milliseconds
	for i := range images {
		images[i] = generatedImage(rng, i, base)
	}
	return images
}

func generatedImage(rng *rand.Rand, i int, base int64) modelarts.Image {
	namespace := generatedNamespaces[rng.IntN(len(generatedNamespaces))]
	name := fmt.Sprintf("%s-%05d", generatedModels[rng.IntN(len(generatedModels))], i)
	tag := fmt.Sprintf("v%d.%d.%d", rng.IntN(3), rng.IntN(10), rng.IntN(20))
	arch := "x86_64"
	if rng.IntN(4) == 0 {
		arch = "aarch64"
	}
	createAt := base + int64(i)*60_000 + rng.Int64N(60_000)
	img := modelarts.Image{
		ID:   fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<12), 0x8000|rng.IntN(1<<14), i),
		Name: name, Tag: tag, Namespace: namespace, Arch: arch,
		Type: "DEDICATED", Visibility: "PRIVATE", Origin: "CUSTOMIZE",
		Status:      generatedStatuses[rng.IntN(len(generatedStatuses))],
		ServiceType: generatedServices[rng.IntN(len(generatedServices))],
		DevServices: []string{"NOTEBOOK", "SSH"}, ResourceCategories: []string{"CPU", "GPU"},
		SWRPath:     fmt.Sprintf("%s/%s/%s:%s", sampleSWR, namespace, name, tag),
		Size:        kb(100_000 + rng.Int64N(20_000_000)),
		WorkspaceID: "0", CreateAt: createAt, UpdateAt: createAt + rng.Int64N(86_400_000),
	}
	if rng.IntN(20) == 0 {
		img.Type, img.Visibility, img.Size, img.Namespace = "BUILD_IN", "PUBLIC", nil, "atelier"
	}
	return img
}
