"""MAE on Fashion-MNIST with a small ViT (patch 4): the paper's recipe at CPU size.

    keras-ssl train --config configs/mae_fashion_mnist.py --workdir runs/mae

He et al. 2021 (arXiv:2111.06377) pretrain ViT-B/L/H with 16x16 patches on 224 px ImageNet
images for 800-1600 epochs, an 8-block, 512-wide decoder with 16 heads, AdamW (base learning
rate 1.5e-4 x batch / 256, betas (0.9, 0.95), weight decay 0.05, 40 warm-up epochs, cosine
decay) at batch 4096. Kept: mask ratio 0.75 (12 of the 7x7 = 49 patches of 4 px stay visible),
per-patch normalised pixel targets, random resized crops of area 0.2-1 and flips as the only
augmentation, AdamW with weight decay 0.05 and the linear learning-rate scaling rule.
Changed for a CPU-sized run of 10 epochs: a 4-block, 128-wide ViT (4 heads) and a 2-block,
64-wide decoder with 4 heads (the paper finds even a 1-block decoder works for fine-tuning),
batch 256, a 10x larger base learning rate (1.5e-3 x batch / 256: 10 epochs instead of 800)
and a half-epoch warm-up (the paper's 40 of 800 epochs, 5% of the run). Keras' AdamW keeps its
default beta_2 = 0.999 (the config schema has no beta_2 field; the paper uses 0.95). The
encoder's position embeddings are the ViT's learned ones (the paper's encoder uses fixed
sine-cosine ones); the decoder's are fixed sine-cosine, as in the paper.
"""

from keras_ssl.config import default_config


def get_config():
    config = default_config()
    config.method = "mae"
    config.method_kwargs = {
        "mask_ratio": 0.75,
        "decoder_dim": 64,
        "decoder_depth": 2,
        "decoder_num_heads": 4,
        "decoder_mlp_ratio": 4.0,
        "norm_pix_loss": True,
    }
    config.backbone = "vit"
    config.backbone_kwargs = {"patch_size": 4, "dim": 128, "depth": 4, "num_heads": 4}
    config.augment.preset = "crop_flip"
    config.augment.kwargs = {"crop_scale": (0.2, 1.0)}
    config.data.dataset = "fashion_mnist"
    config.data.probe_train_examples = 10000
    config.batch_size = 256
    config.epochs = 10
    config.time_budget_minutes = 30.0
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 1.5e-3
    config.optimizer.scaling = "linear"
    config.optimizer.reference_batch_size = 256
    config.optimizer.weight_decay = 0.05
    config.optimizer.warmup_epochs = 0.5
    return config
