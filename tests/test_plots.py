"""Every pooling plot rendered to PNG: sleepstudy random slopes (one panel per term) and a
simulated study with 1,000 groups (no level labels, bounded figure size)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import pytest  # noqa: E402

import hierarchical as hier  # noqa: E402



@pytest.fixture(scope="module")
def sleep_pooling(stored_comparison):
    """Sleepstudy random slopes: complete, no and partial pooling (stored fits)."""
    return stored_comparison("sleepstudy_pooling")


@pytest.fixture(scope="module")
def thousand_groups(stored_comparison):
    """1,000 simulated groups of 1-5 rows (``make_fits.thousand_groups``), stored fits."""
    return stored_comparison("thousand_groups_pooling")


def _png(fig, path):
    hier.plots.save(fig, path)
    image = mpimg.imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 300
    assert image[..., :3].std() > 0.05  # not a blank canvas
    return image


def test_sleepstudy_plots_have_one_panel_per_term(sleep_pooling, tmp_path):
    figures = {
        "shrinkage": hier.plots.shrinkage(sleep_pooling),
        "caterpillar": hier.plots.caterpillar(sleep_pooling.partial),
        "pooling_vs_size": hier.plots.pooling_vs_size(sleep_pooling),
        "variance_components": hier.plots.variance_components(sleep_pooling.partial),
    }
    titles = [ax.get_title() for ax in figures["shrinkage"].axes]
    assert titles == ["Subject intercepts, 18 levels", "Subject slopes on Days, 18 levels"]
    assert [ax.get_title() for ax in figures["caterpillar"].axes] == [
        "Subject intercepts (n = 10 each)", "Subject slopes on Days (n = 10 each)"]
    # 18 subjects: every level is labelled
    labels = [t.get_text() for t in figures["caterpillar"].axes[0].get_yticklabels()]
    assert sorted(labels) == sorted(sleep_pooling.partial.model.design.groups[0].levels)
    assert [ax.get_xlabel() for ax in figures["variance_components"].axes] == [
        "SD of Subject intercepts, Reaction", "SD of Subject slopes on Days, Reaction",
        "residual SD, Reaction"]
    for name, fig in figures.items():
        _png(fig, tmp_path / f"sleepstudy_{name}.png")


def test_plots_stay_readable_with_1000_groups(thousand_groups, tmp_path):
    fig = hier.plots.caterpillar(thousand_groups.partial)
    ax = fig.axes[0]
    assert ax.get_yticklabels() == [] or all(t.get_text() == "" for t in ax.get_yticklabels())
    assert ax.get_ylabel() == "1000 levels of g, sorted; marker area: group size"
    sizes = ax.collections[1].get_sizes()                # groups of 1 to 5 rows
    assert sizes.min() < sizes.max()
    assert fig.get_size_inches()[1] <= 12
    _png(fig, tmp_path / "caterpillar_1000.png")
    shrink = hier.plots.shrinkage(thousand_groups)
    assert shrink.axes[0].collections[0].get_alpha() < 0.5   # faint points read as density
    _png(shrink, tmp_path / "shrinkage_1000.png")
    _png(hier.plots.pooling_vs_size(thousand_groups), tmp_path / "pooling_1000.png")


def test_plot_selection_errors_name_the_choices(sleep_pooling):
    with pytest.raises(hier.exceptions.SpecError, match=r"available: \[\('Subject', 'Intercept'\)"):
        hier.plots.shrinkage(sleep_pooling, term="age")


@pytest.mark.parametrize("support", [(None, None), (0.0, None), (0.0, 1.0)])
def test_binned_weighted_density_is_the_reflected_kde(support):
    """power_scale's densities are binned; against the kernel summed at every draw they
    differ by less than 1 % of the peak (an SD's bound at 0, an ICC's at 0 and 1)."""
    import numpy as np
    from scipy import stats

    from hierarchical.plots import _weighted_density

    rng = np.random.default_rng(0)
    draws = {(None, None): rng.normal(size=4000), (0.0, None): np.abs(rng.normal(size=4000)),
             (0.0, 1.0): rng.beta(2, 5, 4000)}[support]
    weights = rng.dirichlet(np.ones(draws.size))
    grid = np.linspace(draws.min() - 0.1, draws.max() + 0.1, 300)
    h = stats.gaussian_kde(draws, weights=weights).covariance[0, 0] ** 0.5
    centres = [draws] + [2 * bound - draws for bound in support if bound is not None]
    exact = sum(stats.norm.pdf((grid[:, None] - c[None, :]) / h) @ weights for c in centres) / h
    binned = _weighted_density(draws, weights, grid, support)
    inside = np.isfinite(binned)
    assert inside.sum() > 250
    assert np.abs(binned - exact)[inside].max() < 0.01 * exact.max()
