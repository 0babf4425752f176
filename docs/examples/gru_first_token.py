"""A GRU that must remember: classify a token sequence by its FIRST token (100 % after a few epochs)."""

import numpy as np

import new_grad as ng
from new_grad import nn
from new_grad.data import ArrayDataset, DataLoader


def sequences(n, length=12, vocab=4, seed=0):
    tokens = np.random.default_rng(seed).integers(0, vocab, (n, length))
    return np.eye(vocab, dtype=np.float32)[tokens], tokens[:, 0]   # one-hot tokens, label = first token


class Classifier(nn.Module):
    def __init__(self, vocab=4, hidden=32):
        super().__init__()
        self.gru = nn.GRU(vocab, hidden, batch_first=True, dtype=np.float32)   # one fused tape entry per layer
        self.head = nn.Linear(hidden, vocab, dtype=np.float32)

    def forward(self, x):
        _, h_n = self.gru(x)                       # h_n: (num_layers, batch, hidden)
        return self.head(ng.getitem(h_n, -1))


np.random.seed(0)
model, loss_fn = Classifier(), nn.CrossEntropyLoss()
optimizer = ng.optim.Adam(model.parameters(), lr=1e-2)
train = DataLoader(ArrayDataset(*sequences(1024)), batch_size=32, shuffle=True, seed=0)
for _ in range(8):
    for x, y in train:
        engine = ng.Autograd()
        with engine:
            loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        engine.backward(1)
        optimizer.step()

x_test, y_test = sequences(256, seed=1)
with ng.no_grad():
    print(f"held-out accuracy {(model(x_test).argmax(-1) == y_test).mean():.2%}")
