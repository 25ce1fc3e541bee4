"""Denoising autoencoders on MNIST: PSNR gain per variant, and pretrained-encoder classifiers.

Run: `python benchmarks/denoise.py [--data ../shared/data/mnist] [--epochs 80]
[--recipes conv,conv-bce,conv-noskip,conv-plain,conv-plain-mse,bottleneck,sparse,contractive,
stacked] [--no-classify] [--classify-draws 3] [--classify-augment 0,0.1]
[--classify-dropouts 0.5,0.7,0.8] [--classify-finetune-rates 0.1,0.3,0.6,1] [--set FIELD=VALUE]`

Every recipe trains with the app's own code (`apps.denoise.make_datasets`, `build_model` and
`fit`, so the stacked recipe pretrains greedily before fine-tuning) on the same 5,400 of the
6,000 training images, corrupted afresh every epoch, with early stopping on the same 600
validation images, and is scored on the same 2,000 test images with the same fixed noise.

Table 1 (the issue's target: with Gaussian noise of standard deviation 0.5, a denoised PSNR at
least 12 dB above the noisy input's, with at most 100k parameters): per recipe, parameters,
epochs run, mean PSNR and SSIM of the noisy and denoised test images, the gain, seconds.

Table 2 (the target: at least 5 points of accuracy gained): for each trained recipe and each
`--classify-augment` value, `apps.denoise.compare_classifiers`: a head on its encoder trained
first on the frozen encoder, then fine-tuned with it, on `--labels-per-class` labelled training
images per class, against the same network from random weights trained on the same images
through the same two stages (the same learning rates and epochs), both stopped early on the
same 600 labelled validation images, averaged over `--classify-draws` seeded draws of the
labelled images. In every draw each arm trains its head with each pair of a `--classify-dropouts`
rate and a `--classify-finetune-rates` fraction (the second stage's learning rate, as a fraction
of the first's) and keeps the pair its own validation accuracy prefers (the `dropout/fine-tune`
columns), so that neither arm is judged with settings tuned for the other. Until the fifth
session's measurement below, every figure here used one pair for both arms, dropout 0.5 and a
tenth of the rate; until the sixth, a tenth of the rate.

Measured (seed 0, on a 2-core CPU shared with other jobs, so the seconds are slow).
`python benchmarks/denoise.py --data ../shared/data/mnist --recipes conv --classify-augment 0`,
the default model (two full-resolution convolutions, batches of 32; 1,243 s of training on one
core), Table 1:

    recipe  params  epochs  PSNR noisy  PSNR denoised  gain dB  SSIM noisy  SSIM denoised  target
    conv    99,777  80      9.38        21.26          11.88    0.429       0.900          missed

The same model trained three times as long meets the 12 dB target, by 0.01 dB:
`python benchmarks/denoise.py --recipes conv --classify-augment 0 --epochs 240 --set patience=40`
(the cosine schedule spans the 240 epochs; 2,439 s of training on one otherwise idle core):

    recipe  params  epochs  PSNR noisy  PSNR denoised  gain dB  SSIM noisy  SSIM denoised  target
    conv    99,777  240     9.38        21.39          12.01    0.429       0.903          met

and Table 2 (`compare_classifiers` with the default Config: 3 draws, classifier batches of 64;
accuracies on the 2,000 test images, mean of the draws, gains per draw in points):

    augment  frozen + head  pretrained  scratch  gain   per draw          target
    0        89.37%         90.08%      86.55%   +3.53  +5.5 +3.0 +2.1    missed

The 240-epoch model's encoder, the same comparison: frozen + head 90.22%, pretrained 91.35%,
scratch 87.90%, gain +3.45 (per draw +4.7 +4.6 +1.0), missed: a better denoiser is not a
better starting point for the classifier.

The earlier default (92,977 parameters, no full-resolution convolutions, batches of 64), the same
comparison, with and without `--classify-augment 0.1`:

    augment  frozen + head  pretrained  scratch  gain   per draw          target
    0        85.12%         88.20%      86.13%   +2.07  +3.9 +2.0 +0.2    missed
    0.1      83.47%         91.98%      93.33%   -1.35  -0.3 -3.7 -0.05   missed

A later session retrained the same default model (80 epochs, seed 0, the autoencoder pinned to one
core: 3,116 s; 11.86 dB) and ran the same comparison: frozen + head 87.37%, pretrained 89.57%,
scratch 84.50%, gain +5.07 (per draw +6.3 +5.7 +3.1). The same command, the same seeds: +3.53
once, +5.07 now, because the scratch arm moves between sessions (86.55% then, 84.50% now). So the
target is met by this run and missed by the earlier one; it is not met reliably. Nine draws of
the same session (seeds 0-8) give frozen + head 87.11%, pretrained 89.32%, scratch 85.31%, gain
+4.02 (per draw +6.3 +5.7 +3.1 -0.4 +6.2 +4.5 +4.9 +4.9 +0.8). In that session,
training both arms' classifiers on labelled images corrupted afresh each epoch with the
autoencoder's noise (Gaussian, 0.5; a prototype, not kept) lifted the scratch arm to 86.43% and
left the pretrained one at 89.65%: gain +3.22 (per draw +0.9 +2.5 +6.2), so it is no help.

A third session (2026-12-05; scratch script, the same code, 9 draws, seeds 0-8, the autoencoder
and each comparison on one pinned core, 80 epochs of the default model in about 820 s; within a
session the scratch arm is repeatable: its nine accuracies were the same in every run with
the default head and no pseudo-labels):

    run                                                  frozen + head  pretrained  scratch  gain
    default model (11.88 dB)                             89.77%         90.97%      86.27%   +4.70
    the same, another initialisation (seed 1; 11.93 dB)  88.14%         90.49%      86.27%   +4.22
    the first, `--set classify_epochs=300`                89.77%         90.97%      86.27%   +4.70
    the first, pseudo-labels for both arms (prototype)   89.77%         93.61%      88.91%   +4.71
    pretraining on randomly shifted images (10.40 dB)    16.41%         61.36%      86.27%   -24.91
    the first, head on the code only                     87.43%         89.40%      81.39%   +8.01
    the first, head dropout 0.25                         90.15%         91.39%      83.07%   +8.32
    the first, head dropout 0.1                          89.84%         91.23%      82.21%   +9.03
    the first, head dropout 0.7                          89.11%         90.92%      87.06%   +3.86

(per draw: +5.5 +3.0 +2.1 +2.3 +6.7 +5.9 +5.5 +10.0 +1.4 for the first row). The stage cap of 100
epochs, which some probes reach, costs nothing. Pseudo-labelling (a third stage, at the fine-tuning
rate, on the labelled images plus those of the 5,400 training images, labels unused, that the arm
classifies with a probability of at least 0.95) lifts both arms by 2.6 points and leaves the gain
where it was. Pretraining on images shifted by up to 10% of their side (the noisy input and its
clean target shifted alike) ruins the encoder for the classifier: its frozen features classify at
16%, and three of the nine fine-tuned draws stay at 15 to 26%. The rows with a head on the code
alone (`--set classify_skip_features=false`) or lighter dropout (`--set classify_dropout=0.25` or
`0.1`) read above the target, but by weakening the baseline by 3 to 5 points; lighter dropout helps
the pretrained arm only a little (91.39% against 90.97% on the test images). Even chosen by the test
accuracies, each arm's best head gives only +4.33 (0.25 against 0.7: 91.39% against 87.06%); chosen
as it should be, by the mean accuracy on the 600 labelled validation images, the pretrained arm
keeps 0.5 (92.22%; 92.20% at 0.7, 91.98% at 0.25, 91.79% at 0.1) and the scratch arm takes 0.7
(88.11%; 87.50% at 0.5, 85.61% at 0.25, 84.91% at 0.1), and the gain is 90.97% against 87.06%,
+3.91: the default dropout of 0.5 is not even the baseline's best. So the target is still not called
met.

A fourth session (2026-12-05, later; the same kind of scratch script, 9 draws, seeds 0-8, each run
on one pinned core) retrained the default model (seed 0, 80 epochs, 814 s, 11.88 dB) and measured:

    run                                                  frozen + head  pretrained  scratch  gain
    default model                                        89.77%         90.97%      85.79%   +5.18
    the same, L2-SP fine-tuning, alpha 0.01              89.77%         90.97%      85.79%   +5.18
    the same, L2-SP fine-tuning, alpha 0.1               89.77%         90.99%      85.79%   +5.20
    the same, L2-SP fine-tuning, alpha 1                 89.77%         90.83%      85.79%   +5.04
    pretraining for 40 epochs instead of 80 (11.64 dB)   86.23%         89.12%      85.79%   +3.33
    the first, head dropout 0.7                          89.11%         90.94%      86.22%   +4.72
    the first, head dropout 0.8                          88.53%         90.81%      86.46%   +4.34
    the first, head dropout 0.9                          87.78%         89.23%      84.21%   +5.03

The pretrained arm repeated the third session's mean accuracies to the hundredth (89.77% frozen,
90.97% fine-tuned); the scratch arm did not (85.79% against 86.27%; per draw 85.75 87.65 90.30 86.00
80.75 86.10 85.55 82.70 87.30), so the default's gain read +5.18 here against +4.70 there: between
sessions the baseline moves by half a point, and the gain with it. L2-SP (Li et al., 2018: the
fine-tuning loss plus alpha/2 times the squared distance of the encoder's convolution kernels from
their pretrained values) changes nothing. Shorter pretraining gives a worse starting point. Chosen
by the mean accuracy on the validation images, the pretrained arm again keeps dropout 0.5 (92.22%;
92.20% at 0.7, 92.06% at 0.8, 91.31% at 0.9) and the scratch arm takes 0.8 (88.19%; 87.24% at 0.5,
87.61% at 0.7, 85.78% at 0.9): 90.97% against 86.46%, +4.51. Over three sessions the default reads
+4.02, +4.70 and +5.18, and +3.91 to +4.51 with each arm's dropout chosen by validation: the target
is met in one session's default comparison and missed in every fair one, so it is not called met.

A fifth run (2026-12-05; a scratch script that reloads the fourth session's autoencoder weights,
11.88 dB, and calls `compare_classifiers`) measured the comparison as this benchmark now makes it,
each arm choosing its head dropout in every draw by its own validation accuracy
(`--classify-dropouts`; 9 draws, seeds 0-8, split over two processes on one pinned core each: 892 +
683 s for 0.5, 0.7 and 0.8, 1,018 + 783 s for 0.1, 0.25 and 0.9). The trials repeated the fourth
session's fixed-head accuracies to the hundredth (both arms, every draw, at 0.5 and at 0.8), so the
rows below select from the same deterministic trials:

    rates each arm chooses from        frozen + head  pretrained  scratch  gain
    0.5 (one fixed head, as above)     89.77%         90.97%      85.79%   +5.18
    0.5, 0.7, 0.8 (the default here)   89.17%         91.49%      87.19%   +4.29
    0.1, 0.25, 0.5, 0.7, 0.8, 0.9      89.23%         91.48%      87.16%   +4.33
    0.1, 0.25, 0.5 (light rates only)  90.07%         91.36%      85.68%   +5.68
    another autoencoder (seed 1, 80 epochs in 813 s, 11.93 dB; 1,044 + 744 s):
    0.5 (one fixed head)               88.14%         90.48%      85.79%   +4.69
    0.5, 0.7, 0.8                      88.14%         90.65%      87.19%   +3.46

With 0.5, 0.7 and 0.8 the rates chosen (pretrained/scratch) were 0.8/0.7 0.5/0.5 0.7/0.5 0.5/0.8
0.7/0.8 0.7/0.7 0.8/0.8 0.7/0.5 0.5/0.5 and the gains per draw +6.4 +3.0 +0.4 +4.9 +0.4 +7.1 +4.8
+7.5 +4.2 (with the fixed head: +3.5 +3.0 +0.1 +4.5 +9.4 +7.5 +6.5 +8.0 +4.2): choosing per draw
lifts the pretrained arm by half a point and the baseline by 1.4. Widening the grid to 0.1-0.9
changes nothing. A grid of light rates only reads above the target, but only because it withholds
the heavy dropout the baseline prefers (its mean validation accuracy per rate: 84.89% at 0.1, 85.39%
at 0.25, 87.24% at 0.5, 87.61% at 0.7, 88.19% at 0.8, 85.78% at 0.9; the pretrained arm's: 91.80,
91.98, 92.22, 92.20, 92.06, 91.31%). The second autoencoder's encoder gains less still: +3.46
(per draw +4.3 +4.6 +1.3 +4.3 -0.3 +5.2 +1.9 +5.9 +3.9; the baseline's trials are the same runs as
with the first, since they do not depend on the autoencoder). Judged fairly, the gain is +3.5 to
+4.3: the target is missed.

A sixth session (2026-12-06; the same scratch-script method and the same two autoencoders, 9 draws,
seeds 0-8, one pinned core per process) let the fine-tuning rate vary too: the second stage at
0.03, 0.3, 0.6 or 1 times the first stage's rate instead of 0.1, each with dropouts 0.5, 0.7 and
0.8 (`--classify-finetune-rates`; 1,478 to 1,704 s per rate for both arms on the first encoder,
866 to 948 s for the pretrained arm alone on the second, whose baseline trials are the first's).
Mean validation and test accuracy over the draws, in %, at the dropout each arm's validation
accuracy prefers at that rate (pretrained on the first encoder / on the second / scratch):

    fine-tuning rate  pretrained, first      pretrained, second     scratch
    0.03 x            91.59 / 89.88 (0.5)    90.89 / 89.24 (0.7)    88.02 / 86.29 (0.8)
    0.1 x             92.22 / 90.97 (0.5)    91.59 / 90.48 (0.5)    88.19 / 86.46 (0.8)
    0.3 x             93.17 / 91.83 (0.8)    92.17 / 91.03 (0.7)    87.83 / 86.27 (0.8)
    0.6 x             93.39 / 92.38 (0.8)    92.31 / 91.09 (0.8)    87.85 / 86.28 (0.8)
    1 x               93.50 / 92.38 (0.8)    92.57 / 90.83 (0.8)    87.65 / 86.20 (0.8)

The pretrained encoder wants to be fine-tuned faster than a tenth of the rate (0.9 to 1.4 points
of test accuracy at 0.3 to 1 times on the first encoder, 0.35 to 0.6 on the second), the baseline
does not care (86.2% to 86.5% at every rate), so the fixed tenth favoured the baseline. With each
arm choosing its pair per draw by its own validation accuracy (as `compare_classifiers` now does):

    fine-tuning rates (dropouts 0.5/0.7/0.8)  encoder  frozen + head  pretrained  scratch  gain
    0.1 (before this session)                 first    89.17%         91.49%      87.19%   +4.29
                                              second   88.14%         90.65%      87.19%   +3.46
    0.1, 0.3, 0.6, 1 (the default here)       first    89.03%         92.90%      87.26%   +5.64
                                              second   87.74%         91.43%      87.26%   +4.18
    0.03, 0.1, 0.3, 0.6, 1                    first    89.03%         92.90%      87.13%   +5.77
                                              second   87.74%         91.43%      87.13%   +4.30
    0.1, 1                                    first    89.11%         92.37%      87.70%   +4.67
                                              second   87.97%         91.18%      87.70%   +3.48
    1 alone                                   first    88.95%         92.34%      86.93%   +5.41
                                              second   87.94%         90.97%      86.93%   +4.04

(per draw with this benchmark's default grid: first +6.7 +5.2 +2.7 +5.3 +4.9 +6.9 +6.1 +10.4 +2.6,
second +5.1 +5.5 +1.8 +5.2 +3.4 +4.5 +3.4 +7.7 +1.0). Choosing one pair per arm for all nine
draws by the mean validation accuracy instead (pretrained 0.8 at the full rate on both encoders,
scratch 0.8 at a tenth) gives +5.92 on the first encoder (92.38% against 86.46%) and +4.37 on the
second (90.83%). Fine-tuning at the right rate is worth a point or more to the pretrained arm, and
the first encoder now clears the target with the default grid, the wider one and the full rate
alone (not with 0.1 and 1: +4.67), but the second misses it under every grid tried (+3.3 to +4.4,
0.1/0.3/1 giving the +3.29): the two autoencoders differ only in their initial weights, so the
target is met by one and missed by the other, not met reliably.

A seventh session (2026-12-06, later) measured how much the gain depends on the autoencoder's
initial weights: two more autoencoders (seeds 2 and 3, the default model, 80 epochs on one pinned
core, 802 and 807 s, 11.90 and 11.89 dB), each compared with the default grid by the committed
`compare_classifiers` with its pretrained arm alone (two processes of two rates each, one pinned
core each, 1,593 to 1,714 s). The baseline's trials are the sixth session's: they do not depend
on the autoencoder, and this session repeated them to the hundredth on draw 0 (both arms, rates
0.1 and 1, every dropout). Mean validation and test accuracy of the pretrained arm, in %, at the
dropout its validation accuracy prefers at each rate (ties: the lighter dropout):

    fine-tuning rate  pretrained, third      pretrained, fourth
    0.1 x             92.81 / 92.08 (0.5)    91.33 / 89.47 (0.5)
    0.3 x             93.00 / 92.39 (0.5)    91.65 / 89.84 (0.5)
    0.6 x             93.11 / 92.48 (0.7)    92.02 / 90.26 (0.8)
    1 x               93.54 / 92.61 (0.8)    92.26 / 90.42 (0.8)

The four autoencoders under this benchmark's default grid (each arm choosing per draw):

    encoder (seed, PSNR gain)  frozen + head  pretrained  scratch  gain
    first (0, 11.88 dB)        89.03%         92.90%      87.26%   +5.64
    second (1, 11.93 dB)       87.74%         91.43%      87.26%   +4.18
    third (2, 11.90 dB)        87.67%         92.66%      87.26%   +5.40
    fourth (3, 11.89 dB)       88.97%         90.59%      87.26%   +3.34
    mean of the four           88.35%         91.90%      87.26%   +4.64

(per draw: the third +6.7 +6.3 +3.4 +5.1 +3.0 +6.0 +3.6 +11.4 +3.1, the fourth +4.9 +3.5 +0.6 +3.9
+1.9 +3.9 +2.1 +9.4 -0.2; the first two are listed above). With one pair per arm for all nine draws,
chosen by mean validation accuracy (pretrained 0.8 at the full rate on every encoder, scratch 0.8 at
a tenth, 86.46%), the gains are +5.92, +4.37, +6.15 and +3.96, mean +5.10. Autoencoders that denoise
equally well (11.88 to 11.93 dB) give encoders worth 3.3 to 5.6 points: the fourth's frozen features
classify best (88.97%) and fine-tune worst (90.59%). Two of the four meet the target, and the mean
of the four misses it (with one pair per arm, +5.10, it just clears it).

The classifier target is not met reliably: over four autoencoders the gain averages +4.64 (+3.34
to +5.64) with each arm choosing its dropout and fine-tuning rate per draw. The encoder's frozen
features alone beat the scratch network by 0.4 to 1.8 points; with augmentation,
measured on the earlier default only, the scratch network caught up. An earlier protocol that
fine-tuned the pretrained arm at a tenth of the rate but trained the baseline at the full rate only
measured +4.3 to +4.7 points (below): about half of that was the second, slower stage, which the
baseline now gets too. The classifiers' batch size matters as much: on the batch-32 model without
full-resolution convolutions, classifier batches of 32 (the autoencoder's batch size, which the
comparison used to inherit) dropped the scratch arm from 85.7% to 83.9% and made the gain read +4.0
instead of +2.5, so the comparison now has its own `--classify-batch-size`, 64 as in every figure
here.

At the default 80 epochs the 12 dB target is missed by about 0.1 dB. What was tried on the way (same
data, seed and noise; `fit` with early stopping; gains in dB on the test images; "stopped" runs were
ended early because their validation loss trailed the reference run's at the same epoch):

    model (parameters)                                             epochs  loss   gain
    plain conv AE, 20 + 40 5x5 filters, the old default (81,121)   20      BCE    10.18
    U-Net shape, width 22, 2 convs per stage (87,979)              40      BCE    11.01
    the same                                                       40      MSE    11.18
    U-Net shape, width 18, 3 convs per stage (88,291)              40      MSE    11.45
    U-Net shape, width 16, 4 convs per stage (92,977), the default 40      MSE    11.48
    the same                                                       80      MSE    11.74
    the same                                                       120     MSE    11.81
    the same, loss = mean per-image log MSE (the metric itself)    80      -      11.76
    the same, peak learning rate 4e-3 / SiLU / Adam EMA             stopped: no better
    the same with filters 24, 28 (99,705)                           stopped: no better
    the same, hard-sigmoid output under MSE                         stalled at a constant image
    the same, MSE of the clipped output (+ 0.1 x plain MSE)         stopped: no better
    the same, batch 32 instead of 64 (twice the updates per epoch)  80      MSE    11.80
      8 flips/transpositions of each test image averaged            -       -      11.12
      4 / 16 shifts by 0-1 / 0-3 pixels averaged (wrapped round)    -       -      11.69 / 10.78
    + 2 full-resolution convs, batch 32 (99,777), the default       80      MSE    11.88
    the same, `--epochs 160` (early stopping after 111)             111     MSE    11.90
    the same, `--epochs 160 --set patience=30` (1,652 s)            160     MSE    11.99
    the same, `--epochs 240 --set patience=40` (2,439 s)            240     MSE    12.01
    the default, L1 loss (mean absolute error)                      80      L1     11.47
    1 full-resolution conv + batch norm on every conv (98,657)      stopped: behind at every epoch
    the default, batches of 16 (`--set batch_size=16`, 1,307 s)      80      MSE    11.88
    the default + residual stride-1 convs (x + relu(conv(x)), 99,777) 80      MSE    11.78
    the default without skip connections (`conv-noskip`, 92,865)     40      MSE    11.19

Training loss and validation loss stay equal throughout (no overfitting): within 100k parameters the
gain rises slowly with more epochs (11.88, 11.99, 12.01 dB after 80, 160, 240 on the default model,
each with its schedule spanning its epochs), not with the loss. Averaging the outputs for
transformed copies of the test images (test-time augmentation) hurts: the model has learned that
MNIST digits are upright and centred.

Without skip connections (`--recipes conv-noskip --epochs 40`), the code must carry the whole image,
yet its encoder helped the classifier less: 81.22% against 80.90% from scratch (+0.32, per draw +3.6
-5.3 +2.7). Harder pretraining tasks, also 40 epochs, do not help the classifier either (the same
3 draws, scratch 87.90%): masking half of the pixels (`--noise masking --noise-level 0.5`; the
model learns to inpaint, 13.43 dB on that noise) gives frozen + head 78.10% and pretrained 85.98%
(-1.92, per draw -0.1 +0.6 -6.2); Gaussian training noise of standard deviation 0.8 (`--set
train_noise_level=0.8`; 10.95 dB on the test noise of 0.5) gives 88.32% and 90.13% (+2.23, per draw
+4.2 +3.0 -0.5). Easier pretraining is worse still. The idea was that an encoder trained
only on noisy images sees the classifiers' clean images as unfamiliar. The same command with
`--epochs 40`; the scratch arm scored 84.50% in these runs, against 87.90% above with the same
seeds (between sessions it moves by a few points, as much as the gain still missing):

    pretraining noise (validation noise)       AE epochs  frozen + head  pretrained  gain
    gaussian 0.25 (0.5), stopped early             21     27.57%         79.37%      -5.13
    gaussian 0.1 (0.5), stopped early              11     26.43%         83.00%      -1.50
    gaussian 0.25 (0.25), `--noise-level 0.25`     40     26.32%         81.00%      -3.50
    blind: each image's level from U[0, 0.5]       40     78.87%         85.93%      +1.43

(the blind run: a prototype `blind_noise` option, not kept, `--set patience=40`, 11.05 dB at
0.5; per draw +4.4 +0.2 -0.4). A low-noise denoiser's frozen features hardly classify at all,
perhaps because so easy a task needs no features of whole digits. Of the levels tried,
denoising at 0.5 gives the encoder that helps most; neither harder (0.8, masking) nor easier
noise helps more. The dense variants' encoders help less than the conv one, with the same
comparison (augment 0, 3 draws, classifier batches of 64; their scratch arms are the same dense
networks):
stacked (greedy pretraining, then denoising end to end) 78.45% against 76.55% (+1.90), bottleneck
74.48% against 76.55% (-2.07), contractive 70.83% against 76.55% (-5.72), sparse 69.13% against
78.07% (-8.93): pretraining on 5,400 unlabelled images gives them little to build on. Fine-tuning
the pretrained conv encoder while it keeps denoising the unlabelled images (loss cross-entropy + 10
x reconstruction MSE; on the batch-32 model without full-resolution convs, classifier batches of 32)
scored 88.45% against 87.97% for plain fine-tuning and 87.35% for the frozen encoder's head, 3
draws: no real gain, so it is not part of the app.

Classifier heads, as explored on the earlier default model (92,977 parameters, batch 64, 80 epochs)
with the baseline trained at one rate only (10 labels per class, test accuracy in %, draws 0, 1, 2):
a head of flatten + softmax alone favours the pretrained encoder most (scratch 75.6 / 79.0 / 78.2,
pretrained probe-then-fine-tune 86.5 / 85.4) but is a weak baseline; max-pooling the code 2x2 and
dropout 0.5 lift the scratch network by about 4 points (82.1 / 82.8 / 81.4 at its better learning
rate, 3e-3) and the pretrained arm to 90.6 / 83.8 / 86.2; adding the pooled skip feature maps (the
default head) gives scratch 81.2 / 86.2 / 85.6 and pretrained 91.0 / 87.2 / 87.7. Random shifts and
rotations of the labelled images (applied to both arms) lifted the scratch network to 92.7 on draw 0
and the pretrained one to 93.2.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
from _report import record  # noqa: E402
from _settings import settings  # noqa: E402

from apps import base, denoise  # noqa: E402

# The plain conv autoencoder of the course (the app's default before the U-Net shape).
PLAIN = {
    "width": 20,
    "kernel_size": 5,
    "convs_per_stage": 1,
    "skip_connections": False,
    "full_resolution_convs": 0,
}
# name -> Config overrides; `conv` is the app's default (U-Net-shaped, MSE).
RECIPES = {
    "conv": {},
    "conv-bce": {"loss": "bce"},
    "conv-noskip": {"skip_connections": False},
    "conv-plain": {**PLAIN, "loss": "bce"},
    "conv-plain-mse": PLAIN,
    "bottleneck": {"variant": "bottleneck"},
    "sparse": {"variant": "sparse", "code_size": 256},
    "contractive": {"variant": "contractive", "code_size": 128},
    "stacked": {"variant": "stacked"},
}


def print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    parser.add_argument("--data", default=str(default))
    parser.add_argument("--epochs", type=int, default=denoise.Config.epochs)
    parser.add_argument("--noise", default="gaussian", choices=denoise.NOISES)
    parser.add_argument("--noise-level", type=float, default=0.5)
    parser.add_argument("--recipes", default="conv,conv-plain,bottleneck,stacked")
    parser.add_argument("--labels-per-class", type=int, default=10)
    parser.add_argument("--classify-draws", type=int, default=denoise.Config.classify_draws)
    parser.add_argument(
        "--classify-augment",
        default="0,0.1",
        help="comma-separated --classify-augment values: one table 2 row per value",
    )
    parser.add_argument(
        "--classify-dropouts",
        default="0.5,0.7,0.8",
        help="head dropout rates each arm chooses from per draw by its validation accuracy "
        "(one rate: a fixed head, a third of the time)",
    )
    parser.add_argument(
        "--classify-finetune-rates",
        default="0.1,0.3,0.6,1",
        help="fine-tuning learning rates, as fractions of the probe's, that each arm chooses from "
        "per draw together with the dropout (0.1 alone: the app's default, a quarter of the time)",
    )
    parser.add_argument("--classify", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a field of every recipe's Config, e.g. --set batch_size=16",
    )
    args = parser.parse_args()
    if not Path(args.data).exists():
        sys.exit(f"no data at {args.data}: pass --data PATH to the MNIST IDX files")
    names = [n.strip() for n in args.recipes.split(",") if n.strip()]
    augments = [float(v) for v in args.classify_augment.split(",") if v.strip()]
    unknown = sorted(set(names) - set(RECIPES))
    if unknown:
        sys.exit(f"unknown recipe(s) {unknown}; choose from {sorted(RECIPES)}")

    base_config = denoise.Config(
        data=args.data,
        epochs=args.epochs,
        noise=args.noise,
        noise_level=args.noise_level,
        labels_per_class=args.labels_per_class,
        seed=args.seed,
        **{
            "classify_draws": args.classify_draws,
            "classify_dropouts": args.classify_dropouts,
            "classify_finetune_rates": args.classify_finetune_rates,
            **settings(denoise.Config, args.set),
        },
    )
    keras.utils.set_random_seed(args.seed)
    datasets = denoise.make_datasets(base_config, "train")
    base_config = dataclasses.replace(
        base_config, num_classes=10, train_examples=datasets.num_examples["train"]
    )
    print(
        f"data: {datasets.source_name}; "
        + ", ".join(f"{k} {v:,}" for k, v in datasets.num_examples.items())
        + f"; noise {args.noise} {args.noise_level:g}\n"
    )

    denoising = [
        (
            "recipe",
            "params",
            "epochs",
            "PSNR noisy",
            "PSNR denoised",
            "gain dB",
            "SSIM noisy",
            "SSIM denoised",
            "train s",
            "target",
        )
    ]
    classifying = [
        (
            "encoder of",
            "labels",
            "augment",
            "draws",
            "frozen + head acc",
            "pretrained acc",
            "scratch acc",
            "gain points",
            "per draw",
            "pretrained: dropout/fine-tune",
            "scratch: dropout/fine-tune",
            "seconds",
            "target",
        )
    ]
    for name in names:
        config = dataclasses.replace(base_config, **RECIPES[name])
        config.validate()
        keras.utils.set_random_seed(args.seed)
        model = denoise.build_model(config)
        callbacks = [base.early_stopping(config)]
        started = time.perf_counter()
        history, _ = denoise.fit(model, datasets, config, callbacks, verbose=0)
        seconds = time.perf_counter() - started
        scores = denoise.evaluate_model(model, datasets.test, config)
        gain = scores["psnr_denoised"] - scores["psnr_noisy"]
        params = model.count_params()
        met = gain >= 12.0 and params <= 100_000
        denoising.append(
            (
                name,
                f"{params:,}",
                str(len(history["loss"])),
                f"{scores['psnr_noisy']:.2f}",
                f"{scores['psnr_denoised']:.2f}",
                f"{gain:.2f}",
                f"{scores['ssim_noisy']:.3f}",
                f"{scores['ssim_denoised']:.3f}",
                f"{seconds:.0f}",
                "met" if met else "missed",
            )
        )
        print(
            f"{name}: gain {gain:.2f} dB with {params:,} parameters in {seconds:.0f} s",
            flush=True,
        )
        record(
            "denoise",
            f"PSNR gain, {name} ({params:,} parameters)",
            f"{gain:+.2f} dB",
            ">= +12 dB, <= 100k parameters",
            met,
            reference=f"noisy input {scores['psnr_noisy']:.2f} dB",
        )
        if args.classify:
            for augment in augments:
                started = time.perf_counter()
                classify_config = dataclasses.replace(config, classify_augment=augment)
                result = denoise.compare_classifiers(model, datasets, classify_config)
                classifying.append(
                    (
                        name,
                        str(result["train_examples"]),
                        f"{augment:g}",
                        str(result["draws"]),
                        f"{result['pretrained_probe_accuracy']:.2%}",
                        f"{result['pretrained_accuracy']:.2%}",
                        f"{result['scratch_accuracy']:.2%}",
                        f"{result['gain_points']:+.2f}",
                        " ".join(
                            f"{100 * (d['pretrained_accuracy'] - d['scratch_accuracy']):+.1f}"
                            for d in result["per_draw"]
                        ),
                        denoise.chosen_settings(result, "pretrained"),
                        denoise.chosen_settings(result, "scratch"),
                        f"{time.perf_counter() - started:.0f}",
                        "met" if result["gain_points"] >= 5.0 else "missed",
                    )
                )
                record(
                    "denoise",
                    f"pretrained - scratch accuracy, {args.labels_per_class} labels/class, "
                    f"augment {augment:g}",
                    f"{result['gain_points']:+.2f} points",
                    ">= +5 points",
                    result["gain_points"] >= 5.0,
                    reference=f"scratch {result['scratch_accuracy']:.2%}",
                )
                print(
                    f"{name}: classifier gain {result['gain_points']:+.2f} points "
                    f"(augment {augment:g}): {result}",
                    flush=True,
                )
    print()
    print("Table 1: denoising (target: gain >= 12 dB with <= 100,000 parameters)")
    print_table(denoising)
    if args.classify:
        print(
            f"Table 2: classifiers on {args.labels_per_class} labels per class "
            "(target: pretrained >= scratch + 5 points)"
        )
        print_table(classifying)


if __name__ == "__main__":
    main()
