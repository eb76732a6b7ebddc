// The independent side of the SwA interop tests: Apache Santuario (Debian libxml-security-java) signs and
// verifies WS-Security envelopes whose ds:References include cid: attachments.
//
// Santuario has no SwA transform of its own (WSS4J adds one); AttachmentContentSignatureTransform below follows
// WSS4J's (SwA 1.1 section 5.4.2): XML content types are canonicalized by Santuario's exclusive C14N (its own
// parser and canonicalizer), other text/* types get CRLF line ends, everything else is digested as is. The MIME
// type is the one given with each attachment on the command line (what the receiver sees).
//
//   java SwaCheck transform MIME FILE                       -> the transformed octets on stdout
//   java SwaCheck verify ENVELOPE CERT.der [CID MIME FILE]... -> "VALID", or "INVALID" and one line per reference
//   java SwaCheck sign TEMPLATE KEY.pk8 OUT [CID MIME FILE]...  -> OUT: TEMPLATE with a ds:Signature in wsse:Security
//
// sign references the wsu:Id of eb:Messaging and soap:Body (exclusive C14N) and each cid: (the transform above),
// RSA-SHA256 and SHA-256, KeyInfo = wsse:SecurityTokenReference to the template's wsse:BinarySecurityToken.

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileOutputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.HashMap;
import java.util.Map;

import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.transform.TransformerFactory;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;

import org.apache.xml.security.Init;
import org.apache.xml.security.c14n.Canonicalizer;
import org.apache.xml.security.signature.SignedInfo;
import org.apache.xml.security.signature.XMLSignature;
import org.apache.xml.security.signature.XMLSignatureInput;
import org.apache.xml.security.transforms.Transform;
import org.apache.xml.security.transforms.TransformSpi;
import org.apache.xml.security.transforms.Transforms;
import org.apache.xml.security.utils.resolver.ResourceResolverContext;
import org.apache.xml.security.utils.resolver.ResourceResolverException;
import org.apache.xml.security.utils.resolver.ResourceResolverSpi;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

public final class SwaCheck {
    static final String SWA = "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Content-Signature-Transform";
    static final String DS = "http://www.w3.org/2000/09/xmldsig#";
    static final String WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
    static final String WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
    static final String SOAP = "http://www.w3.org/2003/05/soap-envelope";
    static final String EB = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/";
    static final String X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3";

    /** Content-ID -> {MIME type, content}. */
    static final class Attachments {
        final Map<String, String> types = new HashMap<>();
        final Map<String, byte[]> contents = new HashMap<>();

        Attachments(String[] args, int from) throws Exception {
            for (int i = from; i + 2 < args.length; i += 3) {
                types.put(args[i], args[i + 1]);
                contents.put(args[i], Files.readAllBytes(Paths.get(args[i + 2])));
            }
        }
    }

    public static final class AttachmentContentSignatureTransform extends TransformSpi {
        @Override
        protected String engineGetURI() {
            return SWA;
        }

        @Override
        protected XMLSignatureInput enginePerformTransform(XMLSignatureInput input, OutputStream os, Transform transform)
                throws java.io.IOException, org.apache.xml.security.c14n.CanonicalizationException,
                org.apache.xml.security.c14n.InvalidCanonicalizerException,
                org.apache.xml.security.transforms.TransformationException,
                javax.xml.parsers.ParserConfigurationException, org.xml.sax.SAXException {
            return new XMLSignatureInput(octets(input.getMIMEType(), input.getBytes()));
        }
    }

    static byte[] octets(String mimeType, byte[] content) throws org.apache.xml.security.c14n.InvalidCanonicalizerException,
            org.apache.xml.security.c14n.CanonicalizationException, java.io.IOException,
            javax.xml.parsers.ParserConfigurationException, org.xml.sax.SAXException {
        String type = mimeType == null ? "" : mimeType.split(";")[0].trim().toLowerCase();
        if (type.equals("text/xml") || type.equals("application/xml") || type.endsWith("+xml")) {
            return Canonicalizer.getInstance(Canonicalizer.ALGO_ID_C14N_EXCL_OMIT_COMMENTS).canonicalize(content);
        }
        if (type.startsWith("text/")) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            for (int i = 0; i < content.length; i++) {
                byte b = content[i];
                if (b == '\r') {
                    out.write('\r');
                    out.write('\n');
                    if (i + 1 < content.length && content[i + 1] == '\n') {
                        i++;
                    }
                } else if (b == '\n') {
                    out.write('\r');
                    out.write('\n');
                } else {
                    out.write(b);
                }
            }
            return out.toByteArray();
        }
        return content;
    }

    static final class CidResolver extends ResourceResolverSpi {
        final Attachments attachments;

        CidResolver(Attachments attachments) {
            this.attachments = attachments;
        }

        @Override
        public boolean engineCanResolveURI(ResourceResolverContext context) {
            return context.uriToResolve != null && context.uriToResolve.startsWith("cid:");
        }

        @Override
        public XMLSignatureInput engineResolveURI(ResourceResolverContext context) throws ResourceResolverException {
            String cid = context.uriToResolve.substring(4);
            byte[] content = attachments.contents.get(cid);
            if (content == null) {
                throw new ResourceResolverException("no attachment " + cid, context.uriToResolve, context.baseUri);
            }
            XMLSignatureInput input = new XMLSignatureInput(content);
            input.setMIMEType(attachments.types.get(cid));
            input.setSourceURI(context.uriToResolve);
            return input;
        }
    }

    static Document parse(String path) throws Exception {
        DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
        factory.setNamespaceAware(true);
        factory.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        factory.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
        Document doc = factory.newDocumentBuilder().parse(new File(path));
        NodeList all = doc.getElementsByTagNameNS("*", "*");
        for (int i = 0; i < all.getLength(); i++) {
            Element el = (Element) all.item(i);
            if (el.hasAttributeNS(WSU, "Id")) {
                el.setIdAttributeNS(WSU, "Id", true);
            }
        }
        return doc;
    }

    static Element first(Document doc, String ns, String name) {
        NodeList found = doc.getElementsByTagNameNS(ns, name);
        if (found.getLength() == 0) {
            throw new IllegalArgumentException("no " + name);
        }
        return (Element) found.item(0);
    }

    static int verify(String[] args) throws Exception {
        Document doc = parse(args[1]);
        X509Certificate cert = (X509Certificate) CertificateFactory.getInstance("X.509")
                .generateCertificate(Files.newInputStream(Paths.get(args[2])));
        XMLSignature signature = new XMLSignature(first(doc, DS, "Signature"), "", true);
        signature.addResourceResolver(new CidResolver(new Attachments(args, 3)));
        boolean valid = signature.checkSignatureValue(cert.getPublicKey());
        System.out.println(valid ? "VALID" : "INVALID");
        SignedInfo info = signature.getSignedInfo();
        for (int i = 0; i < info.getLength(); i++) {
            System.out.println(info.item(i).getURI() + " " + (info.getVerificationResult(i) ? "ok" : "digest-mismatch"));
        }
        return valid ? 0 : 1;
    }

    static int sign(String[] args) throws Exception {
        Document doc = parse(args[1]);
        PrivateKey key = KeyFactory.getInstance("RSA")
                .generatePrivate(new PKCS8EncodedKeySpec(Files.readAllBytes(Paths.get(args[2]))));
        Attachments attachments = new Attachments(args, 4);
        Element security = first(doc, WSSE, "Security");
        Element token = first(doc, WSSE, "BinarySecurityToken");
        XMLSignature signature = new XMLSignature(doc, "", XMLSignature.ALGO_ID_SIGNATURE_RSA_SHA256,
                Canonicalizer.ALGO_ID_C14N_EXCL_OMIT_COMMENTS);
        security.appendChild(signature.getElement());
        signature.addResourceResolver(new CidResolver(attachments));
        for (Element target : new Element[] {first(doc, EB, "Messaging"), first(doc, SOAP, "Body")}) {
            Transforms transforms = new Transforms(doc);
            transforms.addTransform(Transforms.TRANSFORM_C14N_EXCL_OMIT_COMMENTS);
            signature.addDocument("#" + target.getAttributeNS(WSU, "Id"), transforms,
                    "http://www.w3.org/2001/04/xmlenc#sha256");
        }
        for (String cid : attachments.contents.keySet()) {
            Transforms transforms = new Transforms(doc);
            transforms.addTransform(SWA);
            signature.addDocument("cid:" + cid, transforms, "http://www.w3.org/2001/04/xmlenc#sha256");
        }
        Element str = doc.createElementNS(WSSE, "wsse:SecurityTokenReference");
        Element reference = doc.createElementNS(WSSE, "wsse:Reference");
        reference.setAttributeNS(null, "URI", "#" + token.getAttributeNS(WSU, "Id"));
        reference.setAttributeNS(null, "ValueType", X509V3);
        str.appendChild(reference);
        signature.getKeyInfo().addUnknownElement(str);
        signature.sign(key);
        try (OutputStream out = new FileOutputStream(args[3])) {
            TransformerFactory.newInstance().newTransformer().transform(new DOMSource(doc), new StreamResult(out));
        }
        return 0;
    }

    public static void main(String[] args) throws Exception {
        Init.init();
        Transform.register(SWA, AttachmentContentSignatureTransform.class);
        int status;
        switch (args[0]) {
            case "transform":
                System.out.write(octets(args[1], Files.readAllBytes(Paths.get(args[2]))));
                System.out.flush();
                status = 0;
                break;
            case "verify":
                status = verify(args);
                break;
            case "sign":
                status = sign(args);
                break;
            default:
                throw new IllegalArgumentException("unknown command " + args[0]);
        }
        System.exit(status);
    }
}
