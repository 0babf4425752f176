"""A CNN on scikit-learn's 8×8 digits: a PyTorch-style training loop on new_grad (≥98 % test accuracy)."""

import numpy as np

import new_grad as ng
from new_grad import nn
from new_grad.data import DataLoader, load_digits

np.random.seed(0)
digits = load_digits(val_fraction=0.0)                 # (N, 1, 8, 8) images in [0, 1], labels 0..9
model = nn.Sequential(
    nn.Conv2d(1, 32, 3, padding=1, dtype=np.float32), nn.ReLU(), nn.MaxPool2d(2),   # 32×4×4
    nn.Conv2d(32, 64, 3, padding=1, dtype=np.float32), nn.ReLU(), nn.MaxPool2d(2),  # 64×2×2
    nn.Flatten(), nn.Linear(256, 10, dtype=np.float32),
)
loss_fn = nn.CrossEntropyLoss()
epochs, batches = 10, DataLoader(digits.train, batch_size=32, shuffle=True, seed=0)
optimizer = ng.optim.Adam(model.parameters(), lr=1e-2)
schedule = ng.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=epochs * len(batches))

for _ in range(epochs):
    for images, labels in batches:
        engine = ng.Autograd()
        with engine:                                   # record this step's forward pass on a tape
            loss = loss_fn(model(images), labels)
        optimizer.zero_grad()
        engine.backward(1)                             # one reverse loop fills every parameter's gradient
        optimizer.step()
        schedule.step()

model.eval()
images, labels = digits.test[:]
with ng.no_grad():
    accuracy = (model(images).argmax(1) == labels).mean()
print(f"test accuracy {accuracy:.2%}")
