"""ResNet50 written directly in torch.nn (NCHW), the plain-torch twin of Keras's ResNet50."""
from torch import nn


def conv_bn(cin, cout, kernel, stride=1, padding=0):
    return [nn.Conv2d(cin, cout, kernel, stride, padding), nn.BatchNorm2d(cout, eps=1.001e-5)]


class Bottleneck(nn.Module):
    def __init__(self, cin, filters, stride, shortcut):
        super().__init__()
        self.body = nn.Sequential(*conv_bn(cin, filters, 1, stride), nn.ReLU(),
                                  *conv_bn(filters, filters, 3, 1, 1), nn.ReLU(),
                                  *conv_bn(filters, 4 * filters, 1))
        self.shortcut = nn.Sequential(*conv_bn(cin, 4 * filters, 1, stride)) if shortcut else None

    def forward(self, x):
        skip = x if self.shortcut is None else self.shortcut(x)
        return (self.body(x) + skip).relu()


def resnet50(classes=1000):
    layers = [nn.ZeroPad2d(3), *conv_bn(3, 64, 7, 2), nn.ReLU(), nn.ZeroPad2d(1),
              nn.MaxPool2d(3, 2)]
    cin = 64
    for filters, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            layers.append(Bottleneck(cin, filters, stride if i == 0 else 1, shortcut=i == 0))
            cin = 4 * filters
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, classes),
               nn.Softmax(dim=-1)]
    return nn.Sequential(*layers)
