// Diffusion-DPO's objective (Wallace et al. 2023, eq. 14; SalesforceAIResearch/DiffusionDPO's
// train.py): for a preferred latent x^w and a dispreferred x^l of the same prompt, noised with the
// same ε at the same t, the denoising errors of the trained model and of the frozen reference give
//   inside = −½·β·((‖ε − ε_θ(x^w_t)‖² − ‖ε − ε_θ(x^l_t)‖²) − (‖ε − ε_ref(x^w_t)‖² − ‖ε − ε_ref(x^l_t)‖²))
// (each error the mean over the latent's elements) and the loss −mean log σ(inside).
import Foundation
import Torch

public enum DiffusionDPO {
    public struct Loss {
        /// −mean log σ(inside) over the pairs (differentiable through `modelPrediction`).
        public var loss: Tensor
        /// Share of pairs with inside > 0: the trained model already prefers the winner more than the
        /// reference does (DiffusionDPO's `implicit_acc`).
        public var implicitAccuracy: Double
        /// ½ (mean winner error + mean loser error) of the trained model and of the reference.
        public var modelMSE: Double
        public var referenceMSE: Double
    }

    /// `modelPrediction` and `referencePrediction` hold 2P rows, winners first then losers (as
    /// DiffusionDPO concatenates them); `target` is the ε both were noised with (2P rows, the winner's
    /// noise repeated for its loser).
    public static func loss(modelPrediction: Tensor, referencePrediction: Tensor, target: Tensor, beta: Double) -> Loss {
        precondition(modelPrediction.size(0) % 2 == 0, "winners and losers come in pairs")
        let dims = Array(1..<modelPrediction.rank)
        let model = (modelPrediction - target).square().mean(dims: dims)
        let reference = (referencePrediction.detached() - target).square().mean(dims: dims)
        let m = model.chunk(2, dim: 0), r = reference.chunk(2, dim: 0)
        let modelDiff = m[0] - m[1]
        let referenceDiff = r[0] - r[1]
        let inside = (modelDiff - referenceDiff) * (-0.5 * beta)
        let loss = inside.logSigmoid().mean() * -1
        let (accuracy, modelMSE, referenceMSE) = withNoGrad {
            ((inside .> 0).to(.float32).mean().item(), model.mean().item(), reference.mean().item())
        }
        return Loss(loss: loss, implicitAccuracy: accuracy, modelMSE: modelMSE, referenceMSE: referenceMSE)
    }

    /// The preference pairs of one prompt's images: every (i, j) with score i strictly above score j,
    /// winner first, in index order (ties make no pair).
    public static func pairs(scores: [Double]) -> [(winner: Int, loser: Int)] {
        var out: [(Int, Int)] = []
        for i in scores.indices {
            for j in scores.indices where scores[i] > scores[j] { out.append((i, j)) }
        }
        return out.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
    }
}
