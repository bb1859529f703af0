"""Outside-in measures of an avatar: how it looks to someone who never saw its training data.

Modules (one job each):

    views       the avatar states, cameras and renders every measure looks at (one render path)
    sheet       contact sheet PNG: 0/45/90/180 degrees, open mouth, blink, every attribute variant
    portrait    the portrait side: landmarks, person mask, alignment into the reference view
    regions     per-category landmark regions (hair, beard, eyebrows, glasses, hat, earrings, lips, skin)
    identity    face-recognition distance (dlib ResNet descriptor, optional extra ``perse-studio[eval]``)
    silhouette  head silhouette IoU above the mouth corners
    attributes  per-variant visible change inside its region and leakage outside it
    backview    back-of-head hair colours against the visible hair (CIE76 Delta E)
    report      runs them all, the table and the JSON
"""
