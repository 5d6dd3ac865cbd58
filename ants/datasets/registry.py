"""The benchmark datasets (docs/METHOD.md section 9 and the fine-grained ID sets), as data.

:data:`KNOWN_DATASETS` says where each comes from, its expected image count, checksum,
layout and, for the registration-gated ones, what to do. No logic and no imports: the config
check reads the instructions when it reports a missing dataset.
"""

__all__ = ["KNOWN_DATASETS"]

#: How to obtain the OpenOOD v1.5 sets; each entry's instructions go on with where its images
#: and image list are.
_OPENOOD = (
    "OpenOOD v1.5 ImageNet-1k benchmark: download the image lists and image zips with OpenOOD's "
    "script (github.com/Jingkang50/OpenOOD, scripts/download/download.py, e.g. `python "
    "scripts/download/download.py --contents datasets --datasets ood_v1.5 --save_dir ./data`; the "
    "Google Drive ids are in openood/evaluation_api/datasets.py) and unzip them. "
)

#: Every benchmark dataset of docs/METHOD.md section 9 plus the fine-grained ID sets the paper
#: reports. Per entry: ``benchmark`` (where it is used), ``role`` (``id`` / ``near`` / ``far``),
#: ``source`` (``"download"`` with ``url``, or ``"user path"``), ``expected_images`` (the
#: published image count of the split used), ``checksum`` (of the archive, where known),
#: ``layout`` / ``root`` / ``list`` (what the params entry needs; ``root`` of a download is the
#: folder inside the archive), ``label_set`` (ID sets) and ``instructions`` for user-path sets.
KNOWN_DATASETS: dict[str, dict] = {
    # --- MOS four (far-OOD, ID ImageNet-1k val) ----------------------------------------------
    "imagenet_val": {
        "benchmark": "mos4",
        "role": "id",
        "source": "user path",
        "expected_images": 50_000,
        "layout": "class_folders",
        "root": None,
        "extensions": [".jpeg", ".jpg", ".png"],
        "label_set": "imagenet1k",
        "instructions": (
            "ImageNet-1k (ILSVRC2012) validation set, registration-gated: register at "
            "https://image-net.org, download ILSVRC2012_img_val.tar and arrange the 50,000 images in "
            "one folder per wnid (n01440764/, ..., e.g. with the devkit's labels or the usual "
            "valprep.sh); set root to that folder. Sorted wnid folders give the standard class "
            "indices, matching the imagenet1k label set."
        ),
    },
    "inaturalist": {
        "benchmark": "mos4",
        "role": "far",
        "source": "download",
        "url": "http://pages.cs.wisc.edu/~huangrui/imagenet_ood_dataset/iNaturalist.tar.gz",
        "checksum": "md5:5be6ea8aa027d7b631916427b32cb335",
        "expected_images": 10_000,
        "layout": "flat",
        "root": "iNaturalist/images",
        "extensions": [".jpg", ".jpeg"],
    },
    "sun": {
        "benchmark": "mos4",
        "role": "far",
        "source": "download",
        "url": "http://pages.cs.wisc.edu/~huangrui/imagenet_ood_dataset/SUN.tar.gz",
        "checksum": "md5:8469c3ada62211477954ec1be53b12d0",
        "expected_images": 10_000,
        "layout": "flat",
        "root": "SUN/images",
        "extensions": [".jpg", ".jpeg"],
    },
    "places": {
        "benchmark": "mos4",
        "role": "far",
        "source": "download",
        "url": "http://pages.cs.wisc.edu/~huangrui/imagenet_ood_dataset/Places.tar.gz",
        "checksum": "md5:b5cb5eba2754ae2a28beea8718db699a",
        "expected_images": 10_000,
        "layout": "flat",
        "root": "Places/images",
        "extensions": [".jpg", ".jpeg"],
    },
    "textures": {
        "benchmark": "mos4",
        "role": "far",
        "source": "download",
        "url": "https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz",
        "checksum": "sha256:e42855a52a4950a3b59612834602aa253914755c95b0cff9ead6d07395f8e205",
        "expected_images": 5_640,
        "layout": "flat",
        "root": "dtd/images",
        "extensions": [".jpg", ".jpeg"],
    },
    # --- OpenOOD v1.5 ImageNet-1k ------------------------------------------------------------
    "openood_imagenet_test": {
        "benchmark": "openood_v15",
        "role": "id",
        "source": "user path",
        "expected_images": 45_000,
        "layout": "list",
        "root": None,
        "list": "benchmark_imglist/imagenet/test_imagenet.txt",
        "label_set": "imagenet1k",
        "instructions": _OPENOOD
        + (
            "Then set root to <data>/images_largescale and list to <data>/benchmark_imglist/"
            "imagenet/test_imagenet.txt: its paths are relative to images_largescale/."
        )
        + " The ImageNet-1k images themselves are registration-gated (https://image-net.org).",
    },
    "ssb_hard": {
        "benchmark": "openood_v15",
        "role": "near",
        "source": "user path",
        "expected_images": 49_000,
        "layout": "list",
        "root": None,
        "list": "benchmark_imglist/imagenet/test_ssb_hard.txt",
        "instructions": _OPENOOD
        + (
            "Then set root to <data>/images_largescale and list to <data>/benchmark_imglist/"
            "imagenet/test_ssb_hard.txt: its paths are relative to images_largescale/."
        ),
    },
    "ninco": {
        "benchmark": "openood_v15",
        "role": "near",
        "source": "user path",
        "expected_images": 5_879,
        "layout": "list",
        "root": None,
        "list": "benchmark_imglist/imagenet/test_ninco.txt",
        "instructions": _OPENOOD
        + (
            "Then set root to <data>/images_largescale and list to <data>/benchmark_imglist/"
            "imagenet/test_ninco.txt: its paths are relative to images_largescale/."
        ),
    },
    "openood_inaturalist": {
        "benchmark": "openood_v15",
        "role": "far",
        "source": "user path",
        "expected_images": 10_000,
        "layout": "list",
        "root": None,
        "list": "benchmark_imglist/imagenet/test_inaturalist.txt",
        "instructions": _OPENOOD
        + (
            "Then set root to <data>/images_largescale and list to <data>/benchmark_imglist/"
            "imagenet/test_inaturalist.txt: its paths are relative to images_largescale/."
        ),
    },
    "openood_textures": {
        "benchmark": "openood_v15",
        "role": "far",
        "source": "user path",
        "expected_images": 5_160,
        "layout": "list",
        "root": None,
        "list": "benchmark_imglist/imagenet/test_textures.txt",
        "instructions": _OPENOOD
        + (
            "Then set root to <data>/images_classic and list to <data>/benchmark_imglist/"
            "imagenet/test_textures.txt: its paths are relative to images_classic/."
        ),
    },
    "openimage_o": {
        "benchmark": "openood_v15",
        "role": "far",
        "source": "user path",
        "expected_images": 15_869,
        "layout": "list",
        "root": None,
        "list": "benchmark_imglist/imagenet/test_openimage_o.txt",
        "instructions": _OPENOOD
        + (
            "Then set root to <data>/images_largescale and list to <data>/benchmark_imglist/"
            "imagenet/test_openimage_o.txt: its paths are relative to images_largescale/."
        ),
    },
    # --- fine-grained ID sets (OOD: the MOS far-OOD sets) ------------------------------------
    "cub200": {
        "benchmark": "fine_grained",
        "role": "id",
        "source": "user path",
        "expected_images": 5_794,
        "layout": "class_folders",
        "root": None,
        "extensions": [".jpg"],
        "label_set": "cub200",
        "instructions": (
            "CUB-200-2011 (https://www.vision.caltech.edu/datasets/cub_200_2011/, CUB_200_2011.tgz): "
            "the test split (train_test_split.txt == 0) is 5,794 of the 11,788 images. Arrange the test "
            "images as CUB_200_2011/images/NNN.Name/ class folders (or give an image list with 0-based "
            "labels, class id - 1) and set root to that folder."
        ),
    },
    "stanford_cars": {
        "benchmark": "fine_grained",
        "role": "id",
        "source": "user path",
        "expected_images": 8_041,
        "layout": "list",
        "root": None,
        "list": None,
        "label_set": "stanford_cars",
        "instructions": (
            "Stanford Cars test split (8,041 images; the original site is offline, copies exist e.g. as "
            "torchvision's StanfordCars layout). Write an image list 'cars_test/xxxxx.jpg <class id - 1>' "
            "from the devkit's cars_test_annos_withlabels and set root and list."
        ),
    },
    "food101": {
        "benchmark": "fine_grained",
        "role": "id",
        "source": "user path",
        "expected_images": 25_250,
        "layout": "class_folders",
        "root": None,
        "label_set": "food101",
        "instructions": (
            "Food-101 (http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz, about 5 GB): copy the test "
            "images (meta/test.txt; 25,250 images) of food-101/images into a folder that keeps the "
            "101 class folders (apple_pie ...) and set root to it (configs/finegrained.yaml)."
        ),
    },
    "oxford_pets": {
        "benchmark": "fine_grained",
        "role": "id",
        "source": "user path",
        "expected_images": 3_669,
        "layout": "class_folders",
        "root": None,
        "label_set": "oxford_pets",
        "instructions": (
            "Oxford-IIIT Pets (https://www.robots.ox.ac.uk/~vgg/data/pets/, images.tar.gz and "
            "annotations.tar.gz): sort the test images (annotations/test.txt; 3,669 images) into one "
            "folder per breed named like the file-name prefix (Abyssinian, american_bulldog, ...: 37 "
            "folders) and set root to the folder holding them (configs/finegrained.yaml)."
        ),
    },
}
