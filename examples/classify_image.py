"""Classify an image with ResNet50: the Keras "elephant" example, unchanged but for the import.

    python examples/classify_image.py elephant.jpg                      # ImageNet weights
    python examples/classify_image.py elephant.jpg --weights path/to/resnet50_weights.h5
    python examples/classify_image.py --demo                         # fully offline smoke run

`--weights imagenet` (the default) uses Keras's cached file
`~/.keras/models/resnet50_weights_tf_dim_ordering_tf_kernels.h5` (or `$KERAS_HOME/models/...`)
and downloads it there once when it is missing. Any local Keras
weights file (legacy `.h5` or `.weights.h5`) works offline. `--demo` needs neither an image nor
weights: it writes a random-weights file and a synthetic image to a temporary folder and runs
the same code on them (the labels are then meaningless, the pipeline is the real one).
"""
import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import lamina as keras  # noqa: E402
from lamina.applications.resnet50 import (ResNet50, decode_predictions,  # noqa: E402
                                          preprocess_input)
from lamina.preprocessing import image  # noqa: E402


def classify(img_path, weights="imagenet", top=3):
    model = ResNet50(weights=weights)
    img = image.load_img(img_path, target_size=(224, 224))
    x = image.img_to_array(img)
    x = np.expand_dims(x, axis=0)
    x = preprocess_input(x)
    preds = model.predict(x, verbose=0)
    return decode_predictions(preds, top=top)[0]


def _demo_files(folder):
    """A random-weights ResNet50 file and a synthetic 300x200 image, for an offline run."""
    weights_path = os.path.join(folder, "resnet50_random.weights.h5")
    keras.utils.set_random_seed(0)
    ResNet50(weights=None).save_weights(weights_path)
    yy, xx = np.mgrid[0:200, 0:300]
    pixels = np.stack([xx % 256, yy % 256, (xx + yy) % 256], axis=-1).astype("float32")
    img_path = os.path.join(folder, "synthetic.png")
    image.save_img(img_path, pixels, scale=False)
    return img_path, weights_path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", help="path of the image to classify")
    parser.add_argument("--weights", default="imagenet",
                        help="'imagenet' (cached/downloaded) or a local weights file")
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--demo", action="store_true",
                        help="run offline on a synthetic image and random weights")
    args = parser.parse_args(argv)
    if args.demo:
        with tempfile.TemporaryDirectory() as folder:
            img_path, weights_path = _demo_files(folder)
            results = classify(img_path, weights_path, args.top)
    elif args.image is None:
        parser.error("give an image path, or --demo")
    else:
        results = classify(args.image, args.weights, args.top)
    print("Predicted:", [(wnid, name, float(score)) for wnid, name, score in results])
    return results


if __name__ == "__main__":
    main()
