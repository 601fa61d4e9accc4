// Mirrors the WordLevel model of Hugging Face `tokenizers` 0.23
// (`tokenizers/src/models/wordlevel/mod.rs`).

/// One id per pre-tokenized piece, from a vocabulary; unknown pieces map to the unknown token.
final class WordLevelModel: TokenizerModel {
    /// Keyed by scalars: Swift `String` equality is canonical equivalence, tokenizers' is not.
    let vocab: [PieceKey: Int]
    let idToTokenTable: [Int: String]
    let unkId: Int

    init(vocab: [(String, Int)], unkToken: String?, path: String) throws(TokenizersError) {
        var keyed: [PieceKey: Int] = [:]
        var reverse: [Int: String] = [:]
        for (t, i) in vocab {
            keyed[PieceKey(Array(t.unicodeScalars))] = i
            reverse[i] = t
        }
        self.vocab = keyed
        idToTokenTable = reverse
        let unk = unkToken ?? "<unk>"
        guard let id = keyed[PieceKey(Array(unk.unicodeScalars))] else {
            throw .missingToken(path: path, field: "model.unk_token", token: unk)
        }
        unkId = id
    }

    var vocabularySize: Int { vocab.count }

    func tokenToId(_ token: String) -> Int? { vocab[PieceKey(Array(token.unicodeScalars))] }

    func idToToken(_ id: Int) -> String? { idToTokenTable[id] }

    func tokenize(_ piece: [Unicode.Scalar], into ids: inout [Int]) {
        ids.append(vocab[PieceKey(piece)] ?? unkId)
    }
}
